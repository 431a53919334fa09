//! Printed reports. The Certificate of Analysis is rendered here from plain
//! data that `services::certificate` gathers; nothing here touches the database.

pub mod coa;
pub mod csv;
pub mod history;
pub mod label;

/// The base name of `path` (after its last `/` or `\\`): a file name sent
/// to a browser never carries a path (`../../etc/passwd` is `passwd`); a
/// name that is only dots or nothing is `download`.
pub fn base_name(path: &str) -> &str {
    let base = path.rsplit(['/', '\\']).next().unwrap_or_default().trim();
    if base.chars().all(|c| c == '.') {
        "download"
    } else {
        base
    }
}

/// `text` as a part of a file name: path separators become `-` (a batch
/// number `A/1` names `CoA-A-1.pdf`, not a folder).
pub fn name_part(text: &str) -> String {
    text.replace(['/', '\\'], "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_is_named_by_its_base_name_only() {
        assert_eq!(base_name("../../etc/passwd"), "passwd");
        assert_eq!(base_name("C:\\exports\\flow.csv"), "flow.csv");
        assert_eq!(base_name("flow.csv"), "flow.csv");
        assert_eq!(base_name(".."), "download");
        assert_eq!(base_name("dir/"), "download");
        assert_eq!(name_part("A/1\\2"), "A-1-2");
        let header = crate::http::download::download(false, "../../etc/passwd").to_string();
        assert!(header.contains("filename=\"passwd\""), "{header}");
        assert!(!header.contains(".."), "{header}");
    }
}
