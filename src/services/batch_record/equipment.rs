//! The instruments and material lots results name, by id, as the review
//! pages print them: one read for every result on a page.

use crate::db::schema::{instruments, material_lots};
use crate::domain::record::RecordedResult;
use crate::error::AppError;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use std::collections::HashMap;
use uuid::Uuid;

/// An instrument's code and name; a lot's code, name and lot number.
#[derive(Debug, Default)]
pub struct Equipment {
    /// Instrument id to `(code, name)`.
    pub instruments: HashMap<Uuid, (String, String)>,
    /// Lot id to `(code, name, lot number)`.
    pub lots: HashMap<Uuid, (String, String, String)>,
}

/// What `results` name (registered instruments and material lots).
pub fn of<'a>(
    conn: &mut PgConnection,
    results: impl IntoIterator<Item = &'a RecordedResult>,
) -> Result<Equipment, AppError> {
    let mut instrument_ids = Vec::new();
    let mut lot_ids = Vec::new();
    for r in results {
        instrument_ids.extend(r.instrument_id);
        lot_ids.extend(r.material_ids.iter().copied());
    }
    let mut found = Equipment::default();
    if !instrument_ids.is_empty() {
        let rows: Vec<(Uuid, String, String)> = instruments::table
            .filter(instruments::id.eq_any(&instrument_ids))
            .select((instruments::id, instruments::code, instruments::name))
            .load(conn)?;
        found.instruments = rows.into_iter().map(|(id, c, n)| (id, (c, n))).collect();
    }
    if !lot_ids.is_empty() {
        let rows: Vec<(Uuid, String, String, String)> = material_lots::table
            .filter(material_lots::id.eq_any(&lot_ids))
            .select((
                material_lots::id,
                material_lots::code,
                material_lots::name,
                material_lots::lot_number,
            ))
            .load(conn)?;
        found.lots = rows
            .into_iter()
            .map(|(id, c, n, l)| (id, (c, n, l)))
            .collect();
    }
    Ok(found)
}
