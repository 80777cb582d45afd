//! The settlement benchmark's data set (SPEC section 8): stores whose settlement days are
//! spread over the six values, a menu each, one month of paid trades with their orders,
//! order lines and card or cash payments, and a few open bills that must not count.
//! Every trade is derived from the seed and its own index alone, so each table is written
//! in a pass of its own, in chunks, as `COPY … FROM STDIN` text, without holding the month
//! in memory — and a run with the same shape loads the same rows.

use std::fmt::Write as _;

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Months, NaiveDate, TimeDelta, Utc};
use pos_batch::{SETTLEMENT_DAYS, TimeZone};
use pos_common::domain::CardCompany;

/// The menu's categories, cycled through by product.
const CATEGORIES: [&str; 3] = ["MAIN_MENU", "SUB_MENU", "DRINK"];
/// Tablets per store that pay bills (an open bill gets a tablet of its own: a tablet has
/// at most one open bill).
const TABLETS: u64 = 8;
/// Bills are paid between 10:00 and 23:00 local time.
const OPENS_HOURS: i64 = 10;
const BUSINESS_SECONDS: i64 = 13 * 3600;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub stores: u64,
    pub products_per_store: u64,
    /// Paid trades, all paid within `month`.
    pub paid_trades: u64,
    /// Order lines of the paid trades (spread as evenly as they go: ≈ 3 per trade).
    pub order_lines: u64,
    /// Bills still open at the end of the month, per store.
    pub open_per_store: u64,
    /// The first day of the month the trades are paid in.
    pub month: NaiveDate,
    pub seed: u64,
}

impl Shape {
    /// SPEC section 8: 100 stores, 1,000 products, 930,100 paid trades with 2,791,000
    /// order lines in one month.
    pub fn spec(month: NaiveDate, seed: u64) -> Self {
        Self {
            stores: 100,
            products_per_store: 10,
            paid_trades: 930_100,
            order_lines: 2_791_000,
            open_per_store: 5,
            month,
            seed,
        }
    }

    /// Refuses shapes the schema or the generator cannot hold.
    pub fn check(&self) -> anyhow::Result<()> {
        ensure!(
            self.stores > 0 && self.paid_trades > 0,
            "no stores or trades"
        );
        ensure!(
            self.order_lines >= self.paid_trades,
            "every paid trade has a line"
        );
        let most = self.order_lines.div_ceil(self.paid_trades);
        ensure!(
            most <= self.products_per_store,
            "a trade's lines are of distinct products: {most} lines per trade need as many products"
        );
        ensure!(
            self.month.format("%d").to_string() == "01",
            "the month starts on its first day"
        );
        Ok(())
    }

    /// The days of the month.
    pub fn month_end(&self) -> anyhow::Result<NaiveDate> {
        self.month
            .checked_add_months(Months::new(1))
            .context("a month after the data set's")
    }

    fn trades(&self) -> u64 {
        self.paid_trades + self.stores * self.open_per_store
    }

    /// How many units (stores, products or trades) a table's rows are written from.
    pub fn units(&self, table: Table) -> u64 {
        match table {
            Table::Stores => self.stores,
            Table::Products => self.stores * self.products_per_store,
            Table::Trades | Table::Orders | Table::Lines | Table::Payments => self.trades(),
        }
    }
}

/// A table the data set fills, in load order (each after the tables it references).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Stores,
    Products,
    Trades,
    Orders,
    Lines,
    Payments,
}

impl Table {
    pub const ALL: [Table; 6] = [
        Table::Stores,
        Table::Products,
        Table::Trades,
        Table::Orders,
        Table::Lines,
        Table::Payments,
    ];

    /// The `COPY` statement its rows are written for.
    pub fn copy_statement(self) -> &'static str {
        match self {
            Self::Stores => {
                "COPY stores (id, owner_user_id, name, pos_grade, settlement_day, created_at) \
                 FROM STDIN"
            }
            Self::Products => {
                "COPY products (id, store_id, name, category, price, stock, base_stock, \
                 created_at, updated_at) FROM STDIN"
            }
            Self::Trades => {
                "COPY trades (id, store_id, device_id, amount, status, opened_at, paid_at, \
                 line_count) FROM STDIN"
            }
            Self::Orders => {
                "COPY trade_orders (id, trade_id, store_id, device_id, amount, idempotency_key, \
                 fingerprint, created_at) FROM STDIN"
            }
            Self::Lines => {
                "COPY trade_order_lines (order_id, product_id, product_name, category, \
                 unit_price, count, amount) FROM STDIN"
            }
            Self::Payments => {
                "COPY trade_payments (id, trade_id, store_id, device_id, method, card_company, \
                 amount, card_fee, idempotency_key, fingerprint, paid_at) FROM STDIN"
            }
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Stores => "stores",
            Self::Products => "products",
            Self::Trades => "trades",
            Self::Orders => "trade_orders",
            Self::Lines => "trade_order_lines",
            Self::Payments => "trade_payments",
        }
    }
}

/// splitmix64: small, fast and the same on every platform and `rand` version.
struct Mix(u64);

impl Mix {
    fn new(seed: u64, stream: u64) -> Self {
        let mut mix = Self(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        mix.next();
        mix
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Line {
    product: u64,
    count: i64,
}

struct Order {
    number: u64,
    created_at: DateTime<Utc>,
    lines: Vec<Line>,
}

/// One trade with its orders and, when paid, its payment.
struct Trade {
    id: u64,
    store: u64,
    device: u64,
    opened_at: DateTime<Utc>,
    paid: Option<(DateTime<Utc>, Option<CardCompany>)>,
    orders: Vec<Order>,
}

/// A product's (store-local) index: name, category and price.
fn product_of(local: u64) -> (String, &'static str, i64) {
    let price = 1_000 + 500 * i64::try_from(local % 9).unwrap_or(0);
    (
        format!("Menu {local}"),
        CATEGORIES[usize::try_from(local % 3).unwrap_or(0)],
        price,
    )
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

fn seconds(n: u64) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(n).unwrap_or(i64::MAX))
}

/// Writes the data set's rows.
pub struct Generator {
    shape: Shape,
    zone: TimeZone,
    /// Where each local day of the month begins.
    day_starts: Vec<DateTime<Utc>>,
    /// When the open bills were opened: the month's last evening.
    open_at: DateTime<Utc>,
}

impl Generator {
    pub fn new(shape: Shape, zone: TimeZone) -> anyhow::Result<Self> {
        shape.check()?;
        let end = shape.month_end()?;
        let mut day_starts = Vec::new();
        let mut day = shape.month;
        while day < end {
            day_starts.push(zone.start_of(day));
            day = day.succ_opt().context("a day after")?;
        }
        let last = *day_starts.last().context("a month has days")?;
        Ok(Self {
            shape,
            zone,
            day_starts,
            open_at: last + TimeDelta::hours(20),
        })
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    pub fn zone(&self) -> TimeZone {
        self.zone
    }

    /// Lines of paid trade `index`: the month's lines spread as evenly as they go.
    fn lines_of(&self, index: u64) -> u64 {
        let (n, lines) = (
            u128::from(self.shape.paid_trades),
            u128::from(self.shape.order_lines),
        );
        let i = u128::from(index);
        let spread = (i + 1) * lines / n - i * lines / n;
        u64::try_from(spread).unwrap_or(1)
    }

    /// When paid trade `index` was paid: the month's trades in order of their ids, each
    /// day's within its business hours.
    fn paid_at(&self, index: u64, mix: &mut Mix) -> DateTime<Utc> {
        let (n, days) = (
            u128::from(self.shape.paid_trades),
            self.day_starts.len() as u128,
        );
        let i = u128::from(index);
        let day = i * days / n;
        let first = (day * n).div_ceil(days);
        let next = ((day + 1) * n).div_ceil(days);
        let within = (i - first) * BUSINESS_SECONDS as u128 / (next - first).max(1);
        let start = self.day_starts[usize::try_from(day).unwrap_or(0)];
        start
            + TimeDelta::hours(OPENS_HOURS)
            + seconds(u64::try_from(within).unwrap_or(0))
            + seconds(mix.below(30))
    }

    fn trade(&self, index: u64) -> Trade {
        let shape = &self.shape;
        let mut mix = Mix::new(shape.seed, index);
        let id = index + 1;
        let paid = index < shape.paid_trades;
        let (store, device, lines, opened_at, paid_at) = if paid {
            let store = 1 + mix.below(shape.stores);
            let device = store * 1_000 + mix.below(TABLETS);
            let paid_at = self.paid_at(index, &mut mix);
            let opened_at = paid_at - seconds(300 + mix.below(85 * 60));
            (
                store,
                device,
                self.lines_of(index),
                opened_at,
                Some(paid_at),
            )
        } else {
            let open = index - shape.paid_trades;
            let store = 1 + open / shape.open_per_store.max(1);
            let device = store * 1_000 + 100 + open % shape.open_per_store.max(1);
            let lines = 2.min(shape.products_per_store);
            (store, device, lines, self.open_at, None)
        };
        let first = mix.below(shape.products_per_store);
        let mut all: Vec<Line> = (0..lines)
            .map(|j| Line {
                product: (first + j) % shape.products_per_store,
                count: 1 + i64::try_from(mix.below(3)).unwrap_or(0),
            })
            .collect();
        // A third of the bills got a second order later on.
        let second = (lines >= 2 && mix.below(3) == 0).then(|| all.split_off(all.len() - 1));
        let until = paid_at.unwrap_or(opened_at + TimeDelta::minutes(30));
        let mut orders = vec![Order {
            number: index * 2,
            created_at: opened_at + TimeDelta::seconds(30),
            lines: all,
        }];
        if let Some(lines) = second {
            orders.push(Order {
                number: index * 2 + 1,
                created_at: opened_at + (until - opened_at) / 2,
                lines,
            });
        }
        let payment = paid_at.map(|at| {
            let company = (mix.below(10) < 7)
                .then(|| CardCompany::ALL[usize::try_from(mix.below(3)).unwrap_or(0)]);
            (at, company)
        });
        Trade {
            id,
            store,
            device,
            opened_at,
            paid: payment,
            orders,
        }
    }

    fn global_product(&self, store: u64, local: u64) -> u64 {
        (store - 1) * self.shape.products_per_store + local + 1
    }

    fn order_id(&self, number: u64) -> String {
        // Ids look like the trade role's (hyphenated UUIDs), unique by their low half.
        let high = Mix::new(self.shape.seed, u64::MAX - number).next();
        uuid::Uuid::from_u128((u128::from(high) << 64) | u128::from(number))
            .hyphenated()
            .to_string()
    }

    /// Appends the rows of `table` for units `from..to` (see [`Shape::units`]).
    pub fn write(&self, table: Table, from: u64, to: u64, out: &mut String) -> anyhow::Result<()> {
        let created = stamp(self.day_starts[0] - TimeDelta::days(60));
        for unit in from..to {
            match table {
                Table::Stores => {
                    let id = unit + 1;
                    let day = SETTLEMENT_DAYS[usize::try_from(unit % 6).unwrap_or(0)];
                    writeln!(out, "{id}\t{id}\tBench Diner {id}\tGOLD\t{day}\t{created}")?;
                }
                Table::Products => {
                    let store = 1 + unit / self.shape.products_per_store;
                    let local = unit % self.shape.products_per_store;
                    let (name, category, price) = product_of(local);
                    writeln!(
                        out,
                        "{}\t{store}\t{name}\t{category}\t{price}\t1000000\t1000000\t{created}\t{created}",
                        unit + 1
                    )?;
                }
                Table::Trades | Table::Orders | Table::Lines | Table::Payments => {
                    self.write_trade(table, &self.trade(unit), out)?;
                }
            }
        }
        Ok(())
    }

    fn write_trade(&self, table: Table, trade: &Trade, out: &mut String) -> anyhow::Result<()> {
        let line_amount = |line: &Line| -> i64 { product_of(line.product).2 * line.count };
        let order_amount = |order: &Order| -> i64 { order.lines.iter().map(line_amount).sum() };
        let amount: i64 = trade.orders.iter().map(order_amount).sum();
        let (id, store, device) = (trade.id, trade.store, trade.device);
        match table {
            Table::Trades => {
                let line_count: usize = trade.orders.iter().map(|o| o.lines.len()).sum();
                let (status, paid_at) = match trade.paid {
                    Some((at, _)) => ("PAID", stamp(at)),
                    None => ("OPEN", "\\N".to_string()),
                };
                writeln!(
                    out,
                    "{id}\t{store}\t{device}\t{amount}\t{status}\t{}\t{paid_at}\t{line_count}",
                    stamp(trade.opened_at)
                )?;
            }
            Table::Orders => {
                for order in &trade.orders {
                    let fingerprint: Vec<String> = order
                        .lines
                        .iter()
                        .map(|l| format!("{}:{}", self.global_product(store, l.product), l.count))
                        .collect();
                    writeln!(
                        out,
                        "{}\t{id}\t{store}\t{device}\t{}\tk-{}\t{}\t{}",
                        self.order_id(order.number),
                        order_amount(order),
                        order.number,
                        fingerprint.join(","),
                        stamp(order.created_at)
                    )?;
                }
            }
            Table::Lines => {
                for order in &trade.orders {
                    let order_id = self.order_id(order.number);
                    for line in &order.lines {
                        let (name, category, price) = product_of(line.product);
                        writeln!(
                            out,
                            "{order_id}\t{}\t{name}\t{category}\t{price}\t{}\t{}",
                            self.global_product(store, line.product),
                            line.count,
                            line_amount(line)
                        )?;
                    }
                }
            }
            Table::Payments => {
                if let Some((at, company)) = trade.paid {
                    let (method, company_name, fee) = match company {
                        Some(c) => ("CARD", c.as_str(), pos_trade_storage::card_fee(amount, c)),
                        None => ("CASH", "\\N", 0),
                    };
                    let shown = company.map_or("-", |c| c.as_str());
                    writeln!(
                        out,
                        "{id}\t{id}\t{store}\t{device}\t{method}\t{company_name}\t{amount}\t{fee}\t\
                         p-{id}\tdevice={device};method={method};company={shown};expected=-\t{}",
                        stamp(at)
                    )?;
                }
            }
            Table::Stores | Table::Products => bail!("not a trade table"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Shape {
        Shape {
            stores: 12,
            products_per_store: 10,
            paid_trades: 3_001,
            order_lines: 9_010,
            open_per_store: 2,
            month: "2025-03-01".parse().expect("a date"),
            seed: 7,
        }
    }

    fn rows(generator: &Generator, table: Table) -> Vec<Vec<String>> {
        let mut out = String::new();
        let units = generator.shape.units(table);
        generator
            .write(table, 0, units, &mut out)
            .expect("rows are written");
        out.lines()
            .map(|line| line.split('\t').map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn the_data_set_has_the_requested_shape() {
        let shape = small();
        let generator = Generator::new(shape, TimeZone::default()).expect("a valid shape");
        let stores = rows(&generator, Table::Stores);
        assert_eq!(stores.len(), 12);
        let days: std::collections::BTreeSet<&str> = stores.iter().map(|s| s[4].as_str()).collect();
        assert_eq!(days.len(), 6, "every settlement day has stores");
        assert_eq!(rows(&generator, Table::Products).len(), 120);
        let trades = rows(&generator, Table::Trades);
        let paid: Vec<&Vec<String>> = trades.iter().filter(|t| t[4] == "PAID").collect();
        assert_eq!((paid.len(), trades.len()), (3_001, 3_001 + 24));
        let lines = rows(&generator, Table::Lines);
        let open_lines = 24 * 2;
        assert_eq!(lines.len(), 9_010 + open_lines);
        let payments = rows(&generator, Table::Payments);
        assert_eq!(payments.len(), 3_001, "a payment per paid trade");
        let cards = payments.iter().filter(|p| p[4] == "CARD").count();
        assert!(
            cards > 1_500 && cards < 2_700,
            "card and cash mixed: {cards}"
        );
        // Every paid trade's amount is its lines' and its payment's, and is paid within
        // the month in Seoul.
        let number = |s: &str| s.parse::<i64>().expect("a number");
        let lines_total: i64 = lines.iter().map(|l| number(&l[6])).sum();
        let paid_total: i64 = paid.iter().map(|t| number(&t[3])).sum();
        let open_total: i64 = trades
            .iter()
            .filter(|t| t[4] == "OPEN")
            .map(|t| number(&t[3]))
            .sum();
        let payments_total: i64 = payments.iter().map(|p| number(&p[6])).sum();
        assert_eq!(lines_total, paid_total + open_total);
        assert_eq!(payments_total, paid_total);
        let zone = generator.zone();
        let month = |t: &Vec<String>| {
            let at: DateTime<Utc> = t[6]
                .replace(' ', "T")
                .replace("+00", "Z")
                .parse()
                .expect("an instant");
            zone.date_of(at).format("%Y-%m").to_string()
        };
        assert!(paid.iter().all(|t| month(t) == "2025-03"));
        let orders = rows(&generator, Table::Orders);
        let ids: std::collections::HashSet<&str> = orders.iter().map(|o| o[0].as_str()).collect();
        assert_eq!(ids.len(), orders.len(), "order ids are unique");
    }

    #[test]
    fn fees_are_the_trade_codes() {
        let generator = Generator::new(small(), TimeZone::default()).expect("a valid shape");
        for payment in rows(&generator, Table::Payments) {
            let amount: i64 = payment[6].parse().expect("an amount");
            let fee: i64 = payment[7].parse().expect("a fee");
            let expected = CardCompany::ALL
                .into_iter()
                .find(|c| c.as_str() == payment[5])
                .map_or(0, |c| amount * c.fee_permille() / 1000);
            assert_eq!(fee, expected);
        }
    }
}
