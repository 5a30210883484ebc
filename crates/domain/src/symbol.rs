use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{excerpt, Error, Result};

/// A validated ticker, upper-cased: `AAPL`, `BRK.A`, `X:BTCUSD`, `C:EURUSD`, `I:SPX`,
/// `O:SPY251219C00650000`.
///
/// Only ASCII letters, digits and `.`, `:`, `-`, `_` are accepted, so that a symbol is always safe
/// to put in a URL path, a log line, a file name or an HTML page.
///
/// Cloning is cheap (a shared string), so every candle of a page can carry its symbol.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, example = "AAPL"))]
pub struct Symbol(Arc<str>);

impl Symbol {
    /// The longest symbol accepted, in characters.
    pub const MAX_LEN: usize = 32;

    /// Parses and normalises a ticker, rejecting anything Polygon would not accept.
    pub fn parse(input: &str) -> Result<Self> {
        let reject = |reason| Error::InvalidSymbol {
            input: excerpt(input),
            reason,
        };
        if input.is_empty() {
            return Err(reject("must not be empty"));
        }
        if input.chars().count() > Self::MAX_LEN {
            return Err(reject("must be at most 32 characters"));
        }
        for c in input.chars() {
            if c.is_whitespace() {
                return Err(reject("must not contain whitespace"));
            }
            if c.is_control() {
                return Err(reject("must not contain control characters"));
            }
            if !(c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '_')) {
                return Err(reject(
                    "may contain only ASCII letters, digits and the characters . : - _",
                ));
            }
        }
        if !input.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(reject("must start with a letter or a digit"));
        }
        Ok(Self(input.to_ascii_uppercase().into()))
    }

    /// The normalised ticker.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Symbol {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Symbol {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Self::parse(&s)
    }
}

impl From<Symbol> for String {
    fn from(s: Symbol) -> Self {
        s.0.as_ref().to_owned()
    }
}

impl AsRef<str> for Symbol {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn accepts_the_tickers_polygon_uses() {
        for t in [
            "AAPL",
            "BRK.A",
            "X:BTCUSD",
            "C:EURUSD",
            "I:SPX",
            "O:SPY251219C00650000",
        ] {
            assert_eq!(Symbol::parse(t).unwrap().as_str(), t);
        }
    }

    #[test]
    fn normalises_to_upper_case() {
        assert_eq!(Symbol::parse("brk.a").unwrap().as_str(), "BRK.A");
        assert_eq!(Symbol::parse("x:btcusd").unwrap().as_str(), "X:BTCUSD");
    }

    #[test]
    fn rejects_bad_input_and_names_it() {
        let cases = [
            ("", "empty"),
            ("AAPL MSFT", "whitespace"),
            (" AAPL", "whitespace"),
            ("AAPL\n", "whitespace"),
            ("AA\u{7}PL", "control"),
            ("AAPL/../x", "ASCII letters"),
            ("AAPL\"", "ASCII letters"),
            ("O'NEIL", "ASCII letters"),
            ("<img src=x onerror=alert(1)>", "ASCII letters"),
            ("<script>", "ASCII letters"),
            ("A;DROP", "ASCII letters"),
            ("ÄPFEL", "ASCII letters"),
            (".AAPL", "start"),
        ];
        for (input, reason) in cases {
            let err = Symbol::parse(input).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(reason), "{input:?}: {msg}");
            match err {
                Error::InvalidSymbol { input: named, .. } => assert_eq!(named, input),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn rejects_more_than_32_characters() {
        assert!(Symbol::parse(&"A".repeat(32)).is_ok());
        let err = Symbol::parse(&"A".repeat(33)).unwrap_err();
        assert!(err.to_string().contains("at most 32"));
    }

    #[test]
    fn error_excerpts_huge_input() {
        let huge = "<".repeat(100_000);
        let msg = Symbol::parse(&huge).unwrap_err().to_string();
        assert!(msg.len() < 200, "{}", msg.len());
    }

    #[test]
    fn serde_validates() {
        let s: Symbol = serde_json::from_str("\"aapl\"").unwrap();
        assert_eq!(s.as_str(), "AAPL");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"AAPL\"");
        assert!(serde_json::from_str::<Symbol>("\"a b\"").is_err());
    }

    proptest! {
        #[test]
        fn valid_symbols_round_trip(s in "[A-Za-z0-9][A-Za-z0-9.:_-]{0,31}") {
            let sym = Symbol::parse(&s).unwrap();
            prop_assert_eq!(sym.as_str(), s.to_ascii_uppercase());
            let again = Symbol::parse(sym.as_ref()).unwrap();
            prop_assert_eq!(&again, &sym);
            let json = serde_json::to_string(&sym).unwrap();
            prop_assert_eq!(serde_json::from_str::<Symbol>(&json).unwrap(), sym);
        }

        #[test]
        fn anything_accepted_is_safe_to_echo(s in any::<String>()) {
            if let Ok(sym) = Symbol::parse(&s) {
                prop_assert!(sym.as_str().len() <= Symbol::MAX_LEN);
                prop_assert!(sym
                    .as_str()
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || ".:-_".contains(c)));
            }
        }
    }
}
