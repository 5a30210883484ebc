use std::fmt;
use std::str::FromStr;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use crate::error::{excerpt, Error, Result};

/// The largest multiplier accepted for any timespan.
pub const MAX_MULTIPLIER: u32 = 1_000;

/// The unit of a timeframe, named as Polygon names it in the aggregates URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Timespan {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Quarter,
    Year,
}

impl Timespan {
    /// Every timespan, shortest first.
    pub const ALL: [Timespan; 8] = [
        Self::Second,
        Self::Minute,
        Self::Hour,
        Self::Day,
        Self::Week,
        Self::Month,
        Self::Quarter,
        Self::Year,
    ];

    /// Polygon's name for the unit (`minute`), as used in the aggregates path.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Second => "second",
            Self::Minute => "minute",
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Quarter => "quarter",
            Self::Year => "year",
        }
    }

    /// The suffix of the short form (`m` in `5m`).
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Second => "s",
            Self::Minute => "m",
            Self::Hour => "h",
            Self::Day => "d",
            Self::Week => "w",
            Self::Month => "mo",
            Self::Quarter => "q",
            Self::Year => "y",
        }
    }

    fn from_suffix(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.suffix() == s)
    }

    fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for Timespan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The bars Polygon aggregates a timeframe from; its `limit` parameter counts these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BaseAggregate {
    /// Second bars build second bars.
    Second,
    /// Minute bars build minute and hour bars.
    Minute,
    /// Day bars build day, week, month, quarter and year bars.
    Day,
}

impl BaseAggregate {
    /// The length of one base bar.
    pub fn duration(self) -> TimeDelta {
        match self {
            Self::Second => TimeDelta::seconds(1),
            Self::Minute => TimeDelta::minutes(1),
            Self::Day => TimeDelta::days(1),
        }
    }
}

/// A bar size: a multiplier of a unit, such as `5m` (five minutes) or `1d` (one day).
///
/// Prints and parses the short form (`1s`, `5m`, `1h`, `1d`, `1w`, `1mo`, `1q`, `1y`); serde writes
/// the short form and reads either it or `{"multiplier": 5, "timespan": "minute"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "TimeframeRepr", into = "String")]
pub struct Timeframe {
    multiplier: u32,
    timespan: Timespan,
}

impl Timeframe {
    /// Builds a timeframe, checking `1 <= multiplier <= MAX_MULTIPLIER`.
    pub fn new(multiplier: u32, timespan: Timespan) -> Result<Self> {
        if multiplier == 0 || multiplier > MAX_MULTIPLIER {
            return Err(Error::InvalidTimeframe {
                input: format!("{multiplier}{}", timespan.suffix()),
                reason: format!("the multiplier must be between 1 and {MAX_MULTIPLIER}"),
            });
        }
        Ok(Self {
            multiplier,
            timespan,
        })
    }

    /// Parses the short form, such as `5m` or `1mo`.
    pub fn parse(input: &str) -> Result<Self> {
        let reject = |reason: &str| Error::InvalidTimeframe {
            input: excerpt(input),
            reason: reason.to_owned(),
        };
        const EXPECTED: &str =
            "expected a multiplier and a unit: 1s, 5m, 1h, 1d, 1w, 1mo, 1q or 1y";
        let digits = input.bytes().take_while(u8::is_ascii_digit).count();
        let (number, unit) = input.split_at(digits);
        if number.is_empty() || unit.is_empty() {
            return Err(reject(EXPECTED));
        }
        let timespan = Timespan::from_suffix(unit).ok_or_else(|| reject(EXPECTED))?;
        let multiplier: u32 = number.parse().map_err(|_| {
            reject(&format!(
                "the multiplier must be between 1 and {MAX_MULTIPLIER}"
            ))
        })?;
        Self::new(multiplier, timespan).map_err(|e| match e {
            Error::InvalidTimeframe { reason, .. } => reject(&reason),
            other => other,
        })
    }

    /// How many units make one bar.
    pub fn multiplier(self) -> u32 {
        self.multiplier
    }

    /// The unit.
    pub fn timespan(self) -> Timespan {
        self.timespan
    }

    /// The fixed length of one bar, where one exists (months, quarters and years vary).
    pub fn duration(self) -> Option<TimeDelta> {
        let unit = match self.timespan {
            Timespan::Second => TimeDelta::seconds(1),
            Timespan::Minute => TimeDelta::minutes(1),
            Timespan::Hour => TimeDelta::hours(1),
            Timespan::Day => TimeDelta::days(1),
            Timespan::Week => TimeDelta::weeks(1),
            Timespan::Month | Timespan::Quarter | Timespan::Year => return None,
        };
        Some(unit * self.multiplier as i32)
    }

    /// The base aggregate Polygon builds these bars from.
    pub fn base(self) -> BaseAggregate {
        match self.timespan {
            Timespan::Second => BaseAggregate::Second,
            Timespan::Minute | Timespan::Hour => BaseAggregate::Minute,
            _ => BaseAggregate::Day,
        }
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.multiplier, self.timespan.suffix())
    }
}

impl FromStr for Timeframe {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl From<Timeframe> for String {
    fn from(t: Timeframe) -> Self {
        t.to_string()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timeframe {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaType, Type};
        let short = ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .pattern(Some("^[0-9]{1,4}(s|m|h|d|w|mo|q|y)$"))
            .description(Some("Short form: 1s, 5m, 1h, 1d, 1w, 1mo, 1q, 1y"))
            .examples(["1m"]);
        let long = ObjectBuilder::new()
            .property(
                "multiplier",
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::Integer))
                    .minimum(Some(1))
                    .maximum(Some(MAX_MULTIPLIER)),
            )
            .property("timespan", Timespan::schema())
            .required("multiplier")
            .required("timespan");
        OneOfBuilder::new().item(short).item(long).into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timeframe {}

#[derive(Deserialize)]
#[serde(untagged)]
enum TimeframeRepr {
    Short(String),
    Long { multiplier: u32, timespan: String },
}

impl TryFrom<TimeframeRepr> for Timeframe {
    type Error = Error;
    fn try_from(repr: TimeframeRepr) -> Result<Self> {
        match repr {
            TimeframeRepr::Short(s) => Self::parse(&s),
            TimeframeRepr::Long {
                multiplier,
                timespan,
            } => {
                let unit =
                    Timespan::from_name(&timespan).ok_or_else(|| Error::InvalidTimeframe {
                        input: excerpt(&timespan),
                        reason: "expected second, minute, hour, day, week, month, quarter or year"
                            .to_owned(),
                    })?;
                Self::new(multiplier, unit)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn parses_and_prints_short_forms() {
        for (s, m, t) in [
            ("1s", 1, Timespan::Second),
            ("5m", 5, Timespan::Minute),
            ("1h", 1, Timespan::Hour),
            ("1d", 1, Timespan::Day),
            ("1w", 1, Timespan::Week),
            ("1mo", 1, Timespan::Month),
            ("1q", 1, Timespan::Quarter),
            ("1y", 1, Timespan::Year),
            ("15m", 15, Timespan::Minute),
        ] {
            let tf = Timeframe::parse(s).unwrap();
            assert_eq!((tf.multiplier(), tf.timespan()), (m, t));
            assert_eq!(tf.to_string(), s);
        }
    }

    #[test]
    fn rejects_bad_timeframes_naming_them() {
        for bad in [
            "",
            "m",
            "0m",
            "1001m",
            "1",
            "1x",
            "1M",
            "-1m",
            "1 m",
            "99999999999m",
            "1min",
        ] {
            let err = Timeframe::parse(bad).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidTimeframe { input, .. } if input == bad),
                "{bad:?}: {err:?}"
            );
        }
    }

    #[test]
    fn serde_accepts_short_and_long_forms() {
        let a: Timeframe = serde_json::from_str("\"5m\"").unwrap();
        let b: Timeframe =
            serde_json::from_str(r#"{"multiplier": 5, "timespan": "minute"}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"5m\"");
        assert!(
            serde_json::from_str::<Timeframe>(r#"{"multiplier": 0, "timespan": "minute"}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<Timeframe>(r#"{"multiplier": 1, "timespan": "fortnight"}"#)
                .is_err()
        );
    }

    #[test]
    fn knows_duration_and_base() {
        let tf = |s| Timeframe::parse(s).unwrap();
        assert_eq!(tf("5m").duration(), Some(TimeDelta::minutes(5)));
        assert_eq!(tf("2h").duration(), Some(TimeDelta::hours(2)));
        assert_eq!(tf("1w").duration(), Some(TimeDelta::days(7)));
        assert_eq!(tf("1mo").duration(), None);
        assert_eq!(tf("1y").duration(), None);
        assert_eq!(tf("30s").base(), BaseAggregate::Second);
        assert_eq!(tf("1m").base(), BaseAggregate::Minute);
        assert_eq!(tf("4h").base(), BaseAggregate::Minute);
        assert_eq!(tf("1d").base(), BaseAggregate::Day);
        assert_eq!(tf("1q").base(), BaseAggregate::Day);
        assert_eq!(BaseAggregate::Minute.duration(), TimeDelta::minutes(1));
    }

    fn any_timeframe() -> impl Strategy<Value = Timeframe> {
        (
            1..=MAX_MULTIPLIER,
            proptest::sample::select(Timespan::ALL.to_vec()),
        )
            .prop_map(|(m, t)| Timeframe::new(m, t).unwrap())
    }

    proptest! {
        #[test]
        fn print_parse_round_trip(tf in any_timeframe()) {
            prop_assert_eq!(Timeframe::parse(&tf.to_string()).unwrap(), tf);
            let json = serde_json::to_string(&tf).unwrap();
            prop_assert_eq!(serde_json::from_str::<Timeframe>(&json).unwrap(), tf);
            let long = format!(
                r#"{{"multiplier":{},"timespan":"{}"}}"#,
                tf.multiplier(),
                tf.timespan()
            );
            prop_assert_eq!(serde_json::from_str::<Timeframe>(&long).unwrap(), tf);
        }

        #[test]
        fn anything_accepted_prints_back_identically(s in "[0-9]{0,5}[a-z]{0,3}") {
            if let Ok(tf) = Timeframe::parse(&s) {
                prop_assert_eq!(tf.to_string(), s.trim_start_matches('0'));
            }
        }
    }
}
