-- Corporate actions of each symbol, as Polygon's reference endpoints list them, and when each
-- adjusted series was last stored whole (a split executed after that day makes it stale).
CREATE TABLE splits (
    symbol         text             NOT NULL,
    execution_date date             NOT NULL,
    split_from     double precision NOT NULL CHECK (split_from > 0),
    split_to       double precision NOT NULL CHECK (split_to > 0),
    updated_at     timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, execution_date)
);

CREATE TABLE dividends (
    symbol           text             NOT NULL,
    ex_dividend_date date             NOT NULL,
    cash_amount      double precision NOT NULL CHECK (cash_amount >= 0),
    currency         text,
    declaration_date date,
    record_date      date,
    pay_date         date,
    frequency        integer,
    dividend_type    text,
    updated_at       timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (symbol, ex_dividend_date)
);

ALTER TABLE series ADD COLUMN adjusted_fetched_at timestamptz;
