-- Corporate actions of each symbol, as Polygon's reference endpoints list them, and when each
-- adjusted series was last stored whole (a split executed after that day makes it stale).
-- Dates are `YYYY-MM-DD` text; instants are Unix milliseconds.
CREATE TABLE splits (
    symbol         TEXT    NOT NULL,
    execution_date TEXT    NOT NULL,
    split_from     REAL    NOT NULL CHECK (split_from > 0),
    split_to       REAL    NOT NULL CHECK (split_to > 0),
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (symbol, execution_date)
);

CREATE TABLE dividends (
    symbol           TEXT    NOT NULL,
    ex_dividend_date TEXT    NOT NULL,
    cash_amount      REAL    NOT NULL CHECK (cash_amount >= 0),
    currency         TEXT,
    declaration_date TEXT,
    record_date      TEXT,
    pay_date         TEXT,
    frequency        INTEGER,
    dividend_type    TEXT,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (symbol, ex_dividend_date)
);

ALTER TABLE series ADD COLUMN adjusted_fetched_at INTEGER;
