//! ISBT 128 Donation Identification Number (DIN): facility id (a letter A-N
//! or P-Z, or a digit 1-9, then four digits), year (two digits), sequence (six
//! digits), then the ISO 7064 Mod 37-2 check character.

use super::Words;

/// A validated DIN: 13 characters and the check character, upper case, no spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Din(String);

/// ISO 7064 Mod 37-2 value of a character: 0-9, A-Z = 10-35, `*` = 36.
fn value_of(c: char) -> Option<u32> {
    match c {
        '0'..='9' => c.to_digit(10),
        'A'..='Z' => Some(u32::from(c) - u32::from('A') + 10),
        '*' => Some(36),
        _ => None,
    }
}

fn char_of(v: u32) -> Option<char> {
    match v {
        0..=9 => char::from_digit(v, 10),
        10..=35 => char::from_u32(u32::from('A') + v - 10),
        36 => Some('*'),
        _ => None,
    }
}

/// The ISO 7064 Mod 37-2 check character of `data`.
pub fn check_character(data: &str) -> Option<char> {
    let mut p = 0u32;
    for c in data.chars() {
        p = ((p + value_of(c)?) * 2) % 37;
    }
    char_of((38 - p) % 37)
}

impl Din {
    /// Parses a DIN given with or without spaces, with its check character.
    /// An error is the words saying why.
    pub fn parse(raw: &str) -> Result<Self, Words> {
        let s: String = raw
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_uppercase();
        if s.chars().count() != 14 {
            return Err(Words::with(
                "fe-din-length",
                &[("count", s.chars().count().to_string())],
            ));
        }
        let chars: Vec<char> = s.chars().collect();
        let (data, check) = chars.split_at(13);
        let first = data.first().copied().unwrap_or_default();
        let facility_ok = matches!(first, 'A'..='N' | 'P'..='Z' | '1'..='9')
            && data.iter().skip(1).all(char::is_ascii_digit);
        if !facility_ok {
            return Err(Words::new("fe-din-shape"));
        }
        let data: String = data.iter().collect();
        let expected = check_character(&data).ok_or_else(|| Words::new("fe-din-character"))?;
        let given = check.first().copied().unwrap_or_default();
        if given != expected {
            // The right character is not said: a DIN mistyped by one
            // character must be checked against the bag, not corrected from
            // the refusal.
            return Err(Words::with("fe-din-check", &[("given", given.to_string())]));
        }
        Ok(Din(s))
    }

    /// The normalised DIN.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 13 characters without the check character.
    pub fn data(&self) -> &str {
        self.0.get(..13).unwrap_or(&self.0)
    }

    /// The check character (printed boxed beside the barcode, never in it).
    pub fn check(&self) -> char {
        self.0.chars().nth(13).unwrap_or('?')
    }

    /// The content of the ISBT 128 DIN barcode (data structure 001): `=`,
    /// the 13 characters and the flag characters `00`.
    pub fn barcode_data(&self) -> String {
        format!("={}00", self.data())
    }

    /// The eye-readable DIN under the barcode: `A9999 26 123456 00`.
    pub fn eye_readable(&self) -> String {
        let d = self.data();
        format!(
            "{} {} {} 00",
            d.get(..5).unwrap_or(d),
            d.get(5..7).unwrap_or_default(),
            d.get(7..).unwrap_or_default()
        )
    }

    /// The DIN, as stored, that a search for `scanned` looks for: a scan of
    /// the barcode (`=` + 13 characters + the two flag digits), the
    /// eye-readable line with or without its flags (`W1234 26 123456 00`),
    /// or the DIN with its check character (as typed: a wrong one finds
    /// nothing). Spaces and case aside.
    pub fn searched(scanned: &str) -> String {
        let s: String = scanned
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_uppercase();
        let s = s.strip_prefix('=').unwrap_or(&s).to_owned();
        let data = match s.chars().count() {
            13 => Some(s.clone()),
            15 if s.chars().skip(13).all(|c| c.is_ascii_digit()) => s.get(..13).map(str::to_owned),
            _ => None,
        };
        match data.and_then(|d| check_character(&d).map(|c| format!("{d}{c}"))) {
            Some(din) => din,
            None => s,
        }
    }

    /// Whether a scanned or typed DIN names this donation: the barcode's
    /// content (`=` + 13 characters + flags), or the DIN with or without
    /// its check character, spaces and case aside. A wrong check character
    /// typed by hand does not match.
    pub fn matches_scan(&self, scanned: &str) -> bool {
        let s: String = scanned
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_uppercase();
        let s = s.strip_prefix('=').unwrap_or(&s);
        let (data, rest) = (s.get(..13).unwrap_or(s), s.get(13..).unwrap_or_default());
        if data != self.data() {
            return false;
        }
        match rest.len() {
            0 => true,
            1 => rest.starts_with(self.check()),
            // The barcode's two flag characters.
            2 => rest.chars().all(|c| c.is_ascii_digit()),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scan_matches_the_barcode_the_din_and_nothing_else() {
        let din = Din::parse("G123498654321H").unwrap();
        assert_eq!(din.barcode_data(), "=G12349865432100");
        assert_eq!(din.eye_readable(), "G1234 98 654321 00");
        for ok in [
            "=G12349865432100",
            "G123498654321H",
            "g1234 98 654321",
            "G123498654321",
        ] {
            assert!(din.matches_scan(ok), "{ok}");
        }
        for wrong in [
            "=G12349865432200",
            "G123498654321X",
            "G12349865432",
            "",
            "=G1234986543210000",
        ] {
            assert!(!din.matches_scan(wrong), "{wrong}");
        }
    }

    #[test]
    fn check_characters_match_the_reference_vectors() {
        assert_eq!(check_character("G123498654321"), Some('H'));
        assert_eq!(check_character("ABCDE27000069"), Some('C'));
        assert_eq!(check_character("A999917123456"), Some('9'));
        assert_eq!(check_character("A999914123458"), Some('J'));
    }

    #[test]
    fn a_search_finds_the_din_from_the_barcode_the_eye_readable_line_or_the_din() {
        let din = Din::parse("G123498654321H").unwrap();
        for scanned in [
            "=G12349865432100",
            "G1234 98 654321 00",
            "g1234 98 654321",
            "G123498654321H",
            "G1234 98 654321 H",
        ] {
            assert_eq!(Din::searched(scanned), din.as_str(), "{scanned}");
        }
        assert_eq!(
            Din::searched("G123498654321J"),
            "G123498654321J",
            "as typed"
        );
        assert_eq!(Din::searched("UCMSC-2026-001"), "UCMSC-2026-001");
    }

    #[test]
    fn a_din_is_accepted_with_or_without_spaces() {
        assert_eq!(
            Din::parse("G123498654321H").unwrap().as_str(),
            "G123498654321H"
        );
        assert_eq!(
            Din::parse("G1234 98 654321 H").unwrap().as_str(),
            "G123498654321H"
        );
        assert_eq!(
            Din::parse("a999917123456 9").unwrap().as_str(),
            "A9999171234569"
        );
    }

    #[test]
    fn a_wrong_check_character_or_shape_is_refused() {
        let refused = Din::parse("G123498654321J").unwrap_err().english();
        assert!(
            refused.contains("check character J does not match"),
            "{refused}"
        );
        assert!(
            !refused.contains('H'),
            "the right character is not said: {refused}"
        );
        assert!(Din::parse("G123498654321").is_err(), "no check character");
        assert!(
            Din::parse("O123498654321H").is_err(),
            "O is not a facility letter"
        );
        assert!(
            Din::parse("0123498654321H").is_err(),
            "0 is not a facility digit"
        );
    }
}
