//! Printed reports. The Certificate of Analysis is rendered here from plain
//! data that `services::certificate` gathers; nothing here touches the database.

pub mod coa;
pub mod history;
pub mod label;
