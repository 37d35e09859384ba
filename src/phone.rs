//! Phone numbers: parsed once into E.164, displayed masked.
//!
//! One canonical E.164 string is used for the phone record, the SMS destination, the OTP
//! lookup key and the token claim, whatever spelling the caller sent.

use std::fmt;

use phonenumber::country::Id as Region;
use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, PhoneNumber};

/// A valid phone number in E.164 form.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("the phone number contains characters other than digits, spaces and + ( ) - . /")]
    BadCharacters,
    #[error("the phone number has no country code and no default region is configured")]
    NoCountry,
    #[error("the phone number cannot be parsed")]
    Unparsable,
    #[error("the phone number does not exist in the numbering plan")]
    Invalid,
}

/// Longest input looked at; E.164 numbers have at most 15 digits, formatting adds a few.
const MAX_INPUT_LEN: usize = 40;

impl Phone {
    /// Parses a number as a person would type it.
    ///
    /// A number that carries `+`, or the default region's international dialling prefix,
    /// is read as international and never reinterpreted through the default region (the
    /// region's trunk prefix must not be stripped from another country's number). Only a
    /// national number uses `default_region`.
    pub fn parse(input: &str, default_region: Option<Region>) -> Result<Phone, PhoneError> {
        let input = input.trim();
        if input.is_empty() || input.len() > MAX_INPUT_LEN {
            return Err(PhoneError::Unparsable);
        }
        if !input
            .chars()
            .all(|c| c.is_ascii_digit() || "+()-./ ".contains(c))
        {
            return Err(PhoneError::BadCharacters);
        }
        let digits: String = input.chars().filter(char::is_ascii_digit).collect();
        let plus = input.starts_with('+');
        if input[usize::from(plus)..].contains('+') {
            return Err(PhoneError::Unparsable);
        }

        let number = if plus {
            parse_international(&digits)?
        } else if let Some(region) = default_region {
            match strip_international_prefix(region, &digits) {
                Some(rest) => parse_international(rest)?,
                None => {
                    phonenumber::parse(Some(region), &digits).map_err(|_| PhoneError::Unparsable)?
                }
            }
        } else {
            return Err(PhoneError::NoCountry);
        };
        if !number.is_valid() {
            return Err(PhoneError::Invalid);
        }
        Ok(Phone(number.format().mode(Mode::E164).to_string()))
    }

    /// Wraps a number that was stored in E.164 form by this module.
    pub fn from_e164(e164: String) -> Phone {
        Phone(e164)
    }

    /// The full number. Use only where the full number is the point: the SMS destination,
    /// the database key and the token claim; everywhere else display the phone masked.
    pub fn e164(&self) -> &str {
        &self.0
    }

    /// The country calling code and the last two digits, e.g. `+1•••••••00`.
    pub fn masked(&self) -> String {
        let code_len = phonenumber::parse(None, &self.0)
            .map(|n| n.code().value().to_string().len())
            .unwrap_or(1);
        let digits = &self.0[1..];
        let hidden = digits.len().saturating_sub(code_len + 2);
        let tail = &digits[digits.len().saturating_sub(2)..];
        format!(
            "+{}{}{}",
            &digits[..code_len.min(digits.len())],
            "•".repeat(hidden),
            tail
        )
    }
}

fn parse_international(digits: &str) -> Result<PhoneNumber, PhoneError> {
    phonenumber::parse(None, format!("+{digits}")).map_err(|_| PhoneError::Unparsable)
}

/// The digits after the region's international dialling prefix (`00`, `011`, …), if the
/// number starts with it.
fn strip_international_prefix(region: Region, digits: &str) -> Option<&str> {
    let prefix = DATABASE.by_id(region.as_ref())?.international_prefix()?;
    let found = prefix.find(digits)?;
    (found.start() == 0 && found.end() > 0).then(|| &digits[found.end()..])
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e164(input: &str, region: Option<Region>) -> Result<String, PhoneError> {
        Phone::parse(input, region).map(|p| p.e164().to_owned())
    }

    #[test]
    fn spellings_of_one_number_are_one_phone() {
        let gb = Some(Region::GB);
        for spelling in [
            "+1 (202) 555-0100",
            "+12025550100",
            "+1.202.555.0100",
            "+1 202-555-0100",
        ] {
            assert_eq!(e164(spelling, None).unwrap(), "+12025550100", "{spelling}");
        }
        assert_eq!(e164("00 1 202 555 0100", gb).unwrap(), "+12025550100");
        assert_eq!(
            e164("(202) 555-0100", Some(Region::US)).unwrap(),
            "+12025550100"
        );
    }

    #[test]
    fn a_default_region_never_rewrites_an_international_number() {
        let cases = [
            ("+4915123456789", "+4915123456789"),
            ("+44 7911 123456", "+447911123456"),
            ("+33 6 12 34 56 78", "+33612345678"),
            ("+61 491 570 156", "+61491570156"),
            ("+49 30 901820", "+4930901820"),
            ("+81 90-1234-5678", "+819012345678"),
            ("+91 98765 43210", "+919876543210"),
            ("+55 11 91234-5678", "+5511912345678"),
            ("+1 202 555 0199", "+12025550199"),
        ];
        for region in [
            None,
            Some(Region::US),
            Some(Region::GB),
            Some(Region::DE),
            Some(Region::FR),
        ] {
            for (input, expected) in cases {
                assert_eq!(
                    e164(input, region).unwrap(),
                    expected,
                    "{input} with {region:?}"
                );
            }
        }
        // The international dialling prefix of the region is international too.
        assert_eq!(
            e164("011 49 151 23456789", Some(Region::US)).unwrap(),
            "+4915123456789"
        );
        assert_eq!(
            e164("0049 151 23456789", Some(Region::GB)).unwrap(),
            "+4915123456789"
        );
    }

    #[test]
    fn numbers_that_cannot_exist_are_refused() {
        assert_eq!(e164("+1 555 0100", None), Err(PhoneError::Invalid));
        assert_eq!(e164("2025550100", None), Err(PhoneError::NoCountry));
        assert_eq!(e164("+1202555010a", None), Err(PhoneError::BadCharacters));
        assert_eq!(
            e164("+１２０２５５５０１００", None),
            Err(PhoneError::BadCharacters)
        );
        assert_eq!(e164("", None), Err(PhoneError::Unparsable));
        assert_eq!(e164("+", None), Err(PhoneError::Unparsable));
        assert_eq!(e164("++12025550100", None), Err(PhoneError::Unparsable));
        assert!(e164(&"9".repeat(200), Some(Region::US)).is_err());
    }

    #[test]
    fn display_masks_all_but_the_country_code_and_last_two_digits() {
        let phone = Phone::parse("+12025550142", None).unwrap();
        assert_eq!(phone.to_string(), "+1••••••••42");
        assert!(!format!("{phone:?}").contains("2025550142"));
        let phone = Phone::parse("+447911123456", None).unwrap();
        assert_eq!(phone.to_string(), "+44••••••••56");
    }
}
