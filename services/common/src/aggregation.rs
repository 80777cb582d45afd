//! What an aggregation is: a job (product sales or settlements) over a term (a day, a
//! week, a month), for a window of local dates. Shared by the batch that writes the
//! aggregates and the storage and service that keep and serve them.

use chrono::NaiveDate;

/// What an aggregation computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    /// Units and amounts sold per product.
    ProductSales,
    /// Revenue, card fees and profit per store.
    Settlement,
}

/// The length of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Term {
    Day,
    Week,
    Month,
}

impl Job {
    /// The name on the command line, in run records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProductSales => "product-sales",
            Self::Settlement => "settlement",
        }
    }

    /// The terms this job is kept for: settlements are daily and monthly only.
    pub fn terms(self) -> &'static [Term] {
        match self {
            Self::ProductSales => &[Term::Day, Term::Week, Term::Month],
            Self::Settlement => &[Term::Day, Term::Month],
        }
    }
}

impl Term {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }
}

/// Local dates `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    pub start: NaiveDate,
    pub end: NaiveDate,
}
