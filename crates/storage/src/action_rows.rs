//! Stored splits, dividends and adjusted series as both backends read them, and their
//! conversion to domain types.

use backfill_domain::{Dividend, Split, Symbol, Timeframe};
use chrono::NaiveDate;

use crate::error::{Error, Result};

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct SplitRow {
    symbol: String,
    execution_date: NaiveDate,
    split_from: f64,
    split_to: f64,
}

impl SplitRow {
    pub(crate) fn into_split(self) -> Result<Split> {
        Ok(Split::new(
            Symbol::parse(&self.symbol)?,
            self.execution_date,
            self.split_from,
            self.split_to,
        )?)
    }
}

#[derive(Debug, sqlx::FromRow)]
pub(crate) struct DividendRow {
    symbol: String,
    ex_dividend_date: NaiveDate,
    cash_amount: f64,
    currency: Option<String>,
    declaration_date: Option<NaiveDate>,
    record_date: Option<NaiveDate>,
    pay_date: Option<NaiveDate>,
    frequency: Option<i32>,
    dividend_type: Option<String>,
}

impl DividendRow {
    pub(crate) fn into_dividend(self) -> Result<Dividend> {
        let frequency = self
            .frequency
            .map(|f| {
                u32::try_from(f)
                    .map_err(|_| Error::InvalidData(format!("dividend frequency {f} is negative")))
            })
            .transpose()?;
        Ok(Dividend {
            ticker: Symbol::parse(&self.symbol)?,
            ex_dividend_date: self.ex_dividend_date,
            cash_amount: self.cash_amount,
            currency: self.currency,
            declaration_date: self.declaration_date,
            record_date: self.record_date,
            pay_date: self.pay_date,
            frequency,
            dividend_type: self.dividend_type,
        })
    }
}

/// A dividend's frequency as stored (an `integer`).
pub(crate) fn stored_frequency(dividend: &Dividend) -> Option<i32> {
    dividend.frequency.and_then(|f| i32::try_from(f).ok())
}

pub(crate) fn parse_timeframe(text: &str) -> Result<Timeframe> {
    Ok(Timeframe::parse(text)?)
}

/// The stored splits of a symbol, oldest first, on either backend.
pub(crate) async fn read_splits<'e, DB, E>(db: E, symbol: &Symbol) -> Result<Vec<Split>>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'e, Database = DB>,
    SplitRow: for<'r> sqlx::FromRow<'r, DB::Row> + Send + Unpin,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    let rows: Vec<SplitRow> = sqlx::query_as(
        "SELECT symbol, execution_date, split_from, split_to \
         FROM splits WHERE symbol = $1 ORDER BY execution_date",
    )
    .bind(symbol.as_str().to_owned())
    .fetch_all(db)
    .await?;
    rows.into_iter().map(SplitRow::into_split).collect()
}

/// The stored dividends of a symbol, oldest first, on either backend.
pub(crate) async fn read_dividends<'e, DB, E>(db: E, symbol: &Symbol) -> Result<Vec<Dividend>>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'e, Database = DB>,
    DividendRow: for<'r> sqlx::FromRow<'r, DB::Row> + Send + Unpin,
    String: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DB::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
{
    let rows: Vec<DividendRow> = sqlx::query_as(
        "SELECT symbol, ex_dividend_date, cash_amount, currency, declaration_date, \
             record_date, pay_date, frequency, dividend_type \
         FROM dividends WHERE symbol = $1 ORDER BY ex_dividend_date",
    )
    .bind(symbol.as_str().to_owned())
    .fetch_all(db)
    .await?;
    rows.into_iter().map(DividendRow::into_dividend).collect()
}
