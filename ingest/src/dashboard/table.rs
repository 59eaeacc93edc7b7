//! The page of the vehicle table a stream asks for, in the query of
//! `GET /events/stream?sort=events&order=desc&page=0&page_size=25`: the kept vehicles sorted by
//! one column (ties by VIN), cut into pages, each row with its trail for the map. A stream sends
//! this page only, however many vehicles the dashboard keeps.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::positions::metres;
use super::row::VehicleRow;
use super::state::{FleetState, first_sorted};

/// Rows of a page unless the query says otherwise.
pub const DEFAULT_PAGE_SIZE: usize = 25;
/// Most rows a page may have.
pub const MAX_PAGE_SIZE: usize = 100;
/// The highest page a query may ask for. Any page past the last one gets the last one, so this
/// bound only gives the query a stated limit (the API description's `maximum`), the same on every
/// platform, instead of whatever fits the server's `usize`.
pub const MAX_PAGE: usize = u32::MAX as usize;

/// The column the table is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// The VIN.
    Vin,
    /// The make.
    Make,
    /// The model.
    Model,
    /// The earliest event time.
    FirstSeen,
    /// The latest event time.
    LastSeen,
    /// Events stored.
    #[default]
    Events,
    /// Speed at the latest event.
    LastSpeed,
}

impl SortKey {
    /// Every key's name in the query, in column order.
    pub const NAMES: [&'static str; 7] = [
        "vin",
        "make",
        "model",
        "first_seen",
        "last_seen",
        "events",
        "last_speed",
    ];

    /// `a` against `b` by this column alone.
    fn compare(self, a: &VehicleRow, b: &VehicleRow) -> Ordering {
        match self {
            Self::Vin => a.vin.cmp(&b.vin),
            Self::Make => a.make.cmp(&b.make),
            Self::Model => a.model.cmp(&b.model),
            Self::FirstSeen => a.first_seen.cmp(&b.first_seen),
            Self::LastSeen => a.last_seen.cmp(&b.last_seen),
            Self::Events => a.events.cmp(&b.events),
            Self::LastSpeed => a.last_speed.total_cmp(&b.last_speed),
        }
    }
}

/// Ascending or descending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    /// Smallest first.
    Asc,
    /// Largest first.
    #[default]
    Desc,
}

/// The page a stream asks for. Every field is optional in the query; other query parameters
/// (`access_token`) are not this module's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TableQuery {
    /// The column sorted by.
    pub sort: SortKey,
    /// Its direction.
    pub order: Order,
    /// The page, from 0 to [`MAX_PAGE`]; past the last page means the last page.
    pub page: usize,
    /// Rows per page, 1 to [`MAX_PAGE_SIZE`].
    pub page_size: usize,
}

impl Default for TableQuery {
    /// Most events first, the first page of [`DEFAULT_PAGE_SIZE`] rows.
    fn default() -> Self {
        Self {
            sort: SortKey::default(),
            order: Order::default(),
            page: 0,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

/// A query the table cannot answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableQueryError {
    /// `page_size` is 0 or above [`MAX_PAGE_SIZE`].
    #[error("checking the table query: page_size {0} is not between 1 and {max}", max = MAX_PAGE_SIZE)]
    PageSize(usize),
    /// `page` is above [`MAX_PAGE`].
    #[error("checking the table query: page {0} is above {max}", max = MAX_PAGE)]
    Page(usize),
}

impl TableQuery {
    /// The query if the table can answer it.
    pub fn checked(self) -> Result<Self, TableQueryError> {
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            Err(TableQueryError::PageSize(self.page_size))
        } else if self.page > MAX_PAGE {
            Err(TableQueryError::Page(self.page))
        } else {
            Ok(self)
        }
    }

    /// `a` against `b` in the table's order: the column in its direction, then the VIN.
    fn compare(&self, a: &VehicleRow, b: &VehicleRow) -> Ordering {
        let by_column = self.sort.compare(a, b);
        let by_column = match self.order {
            Order::Asc => by_column,
            Order::Desc => by_column.reverse(),
        };
        by_column.then_with(|| a.vin.cmp(&b.vin))
    }
}

/// One row of the table: the vehicle's latest summary and its trail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableRow {
    /// The latest summary.
    #[serde(flatten)]
    pub vehicle: VehicleRow,
    /// Its recent positions, oldest first, in whole metres from the area's origin.
    pub trail: Vec<[i32; 2]>,
}

/// The page sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TablePage {
    /// The column sorted by.
    pub sort: SortKey,
    /// Its direction.
    pub order: Order,
    /// The page sent, from 0 (the last one when a later one was asked for).
    pub page: usize,
    /// Rows per page.
    pub page_size: usize,
    /// Pages in all (at least 1).
    pub pages: usize,
    /// Vehicles in the table: every vehicle kept.
    pub total: usize,
    /// The page's rows, in the table's order.
    pub rows: Vec<TableRow>,
    /// Rows of the page left out to stay under the message cap (0 unless the cap is tiny).
    #[serde(skip_serializing_if = "is_zero")]
    pub rows_omitted: usize,
    /// Rows sent without their trail to stay under the message cap.
    #[serde(skip_serializing_if = "is_zero")]
    pub trails_omitted: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The page of `state`'s vehicles that `query` asks for.
pub fn table_page(state: &FleetState, query: &TableQuery) -> TablePage {
    let all: Vec<_> = state.tracked().collect();
    let total = all.len();
    let pages = total.div_ceil(query.page_size).max(1);
    let page = query.page.min(pages - 1);
    let start = page * query.page_size;
    let end = (start + query.page_size).min(total);
    let sorted = first_sorted(all, end, |a, b| query.compare(a.0, b.0));
    let rows = sorted[start.min(sorted.len())..]
        .iter()
        .map(|(row, trail)| TableRow {
            vehicle: (*row).clone(),
            trail: trail.iter().map(|p| [metres(p[0]), metres(p[1])]).collect(),
        })
        .collect();
    TablePage {
        sort: query.sort,
        order: query.order,
        page,
        page_size: query.page_size,
        pages,
        total,
        rows,
        rows_omitted: 0,
        trails_omitted: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::fixtures::summary;

    fn vins(page: &TablePage) -> Vec<&str> {
        page.rows.iter().map(|r| r.vehicle.vin.as_str()).collect()
    }

    #[test]
    fn pages_follow_the_asked_column_and_direction_with_ties_by_vin() {
        let mut state = FleetState::default();
        // V00..V09 with 1..10 events; V10 ties V09 at 10 events.
        for n in 0..10u32 {
            state.apply(summary(
                &format!("V{n:02}"),
                "Volvo",
                "XC40",
                i64::from(n) + 1,
                n,
            ));
        }
        state.apply(summary("V10", "Ford", "Transit", 10, 1));
        let mut query = TableQuery {
            page_size: 4,
            ..TableQuery::default()
        };
        let first = table_page(&state, &query);
        assert_eq!(vins(&first), ["V09", "V10", "V08", "V07"]);
        assert_eq!((first.total, first.pages, first.page), (11, 3, 0));
        query.page = 2;
        assert_eq!(vins(&table_page(&state, &query)), ["V02", "V01", "V00"]);
        // Past the last page: the last page.
        query.page = 99;
        let last = table_page(&state, &query);
        assert_eq!((last.page, last.rows.len()), (2, 3));

        let by_make = TableQuery {
            sort: SortKey::Make,
            order: Order::Asc,
            page_size: 2,
            ..TableQuery::default()
        };
        assert_eq!(vins(&table_page(&state, &by_make)), ["V10", "V00"]);
        let by_speed = TableQuery {
            sort: SortKey::LastSpeed,
            ..by_make
        };
        assert_eq!(
            vins(&table_page(&state, &by_speed)),
            ["V00", "V01"],
            "equal speeds: by VIN"
        );
        assert!(first.rows.iter().all(|r| !r.trail.is_empty()));
    }

    #[test]
    fn an_empty_table_has_one_empty_page() {
        let page = table_page(&FleetState::default(), &TableQuery::default());
        assert_eq!((page.total, page.pages, page.page), (0, 1, 0));
        assert!(page.rows.is_empty());
    }

    #[test]
    fn the_query_reads_from_the_url_and_is_checked() {
        let parse = |q: &str| {
            let uri: axum::http::Uri = format!("/events/stream?{q}").parse().unwrap();
            axum::extract::Query::<TableQuery>::try_from_uri(&uri).map(|q| q.0)
        };
        assert_eq!(parse("").unwrap(), TableQuery::default());
        let q = parse("sort=last_seen&order=asc&page=3&page_size=50&access_token=x").unwrap();
        assert_eq!(
            q,
            TableQuery {
                sort: SortKey::LastSeen,
                order: Order::Asc,
                page: 3,
                page_size: 50,
            }
        );
        assert!(parse("sort=colour").is_err());
        assert!(parse("page=-1").is_err());
        assert_eq!(
            parse("page_size=0").unwrap().checked(),
            Err(TableQueryError::PageSize(0))
        );
        assert!(parse("page_size=101").unwrap().checked().is_err());
        assert!(parse("page_size=100").unwrap().checked().is_ok());
        // The stated maximum page is taken; one above it is refused, in or out of usize.
        assert!(parse("page=4294967295").unwrap().checked().is_ok());
        assert_eq!(
            parse("page=4294967296").unwrap().checked(),
            Err(TableQueryError::Page(4_294_967_296))
        );
        assert!(parse("page=423446726173949630397546496").is_err());
        for name in SortKey::NAMES {
            assert!(parse(&format!("sort={name}")).is_ok(), "{name}");
        }
    }
}
