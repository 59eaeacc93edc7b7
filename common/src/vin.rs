//! Vehicle identification numbers (ISO 3779, with the North American check digit in position 9).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid VIN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VinError {
    /// A VIN has exactly 17 characters.
    #[error("must be 17 characters, got {0}")]
    Length(usize),
    /// Only digits and upper-case letters other than I, O and Q are allowed.
    #[error(
        "character {ch:?} at position {position} is not allowed (digits and A-Z except I, O, Q)"
    )]
    Character {
        /// The offending character.
        ch: char,
        /// Its 1-based position.
        position: usize,
    },
    /// The old client's identifiers hold only upper-case ASCII letters and digits.
    #[error("character {ch:?} at position {position} is not allowed (upper-case A-Z and digits)")]
    LegacyCharacter {
        /// The offending character.
        ch: char,
        /// Its 1-based position.
        position: usize,
    },
    /// Position 9 must hold the check digit computed from the other 16.
    #[error("check digit at position 9 is {found:?}, expected {expected:?}")]
    CheckDigit {
        /// The character found in position 9.
        found: char,
        /// The check digit the other characters call for.
        expected: char,
    },
}

/// A VIN: 17 characters. [`Vin::parse`] checks the check digit; [`Vin::parse_legacy`] accepts the
/// old client's random 17-character identifiers, which have none.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Vin(String);

const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

fn transliterate(ch: char) -> Option<u32> {
    Some(match ch {
        '0'..='9' => ch as u32 - '0' as u32,
        'A' | 'J' => 1,
        'B' | 'K' | 'S' => 2,
        'C' | 'L' | 'T' => 3,
        'D' | 'M' | 'U' => 4,
        'E' | 'N' | 'V' => 5,
        'F' | 'W' => 6,
        'G' | 'P' | 'X' => 7,
        'H' | 'Y' => 8,
        'R' | 'Z' => 9,
        _ => return None,
    })
}

/// The check digit (`'0'..='9'` or `'X'`) for 17 characters; position 9 is ignored.
/// Returns `None` if a character outside the VIN alphabet appears.
pub fn check_digit(chars: &[char; 17]) -> Option<char> {
    let mut sum = 0;
    for (ch, weight) in chars.iter().zip(WEIGHTS) {
        sum += transliterate(*ch)? * weight;
    }
    Some(match sum % 11 {
        10 => 'X',
        d => char::from_digit(d, 10).expect("a remainder below 10 is a digit"),
    })
}

fn chars_of(s: &str) -> Result<[char; 17], VinError> {
    let chars: Vec<char> = s.chars().collect();
    let len = chars.len();
    chars.try_into().map_err(|_| VinError::Length(len))
}

impl Vin {
    /// Parses a VIN and checks its alphabet and check digit.
    pub fn parse(s: &str) -> Result<Self, VinError> {
        let chars = chars_of(s)?;
        for (i, ch) in chars.iter().enumerate() {
            if transliterate(*ch).is_none() {
                return Err(VinError::Character {
                    ch: *ch,
                    position: i + 1,
                });
            }
        }
        let expected = check_digit(&chars).expect("alphabet checked above");
        if chars[8] != expected {
            return Err(VinError::CheckDigit {
                found: chars[8],
                expected,
            });
        }
        Ok(Self(s.to_owned()))
    }

    /// Parses the old client's identifier: 17 upper-case ASCII letters or digits, no check digit.
    pub fn parse_legacy(s: &str) -> Result<Self, VinError> {
        let chars = chars_of(s)?;
        for (i, ch) in chars.iter().enumerate() {
            if !(ch.is_ascii_uppercase() || ch.is_ascii_digit()) {
                return Err(VinError::LegacyCharacter {
                    ch: *ch,
                    position: i + 1,
                });
            }
        }
        Ok(Self(s.to_owned()))
    }

    /// Builds a valid VIN from a world manufacturer identifier (3 characters) and a serial
    /// number, filling in the check digit. Used by the simulator.
    pub fn from_serial(wmi: &str, serial: u64) -> Self {
        let body = format!("{wmi:0<3.3}A1B2C0R{:07}", serial % 10_000_000);
        let mut chars = chars_of(&body).expect("17 characters by construction");
        chars[8] = check_digit(&chars).expect("generated from the VIN alphabet");
        Self(chars.iter().collect())
    }

    /// The VIN as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_known_valid_vins() {
        // Published examples with correct check digits.
        for vin in [
            "1M8GDM9AXKP042788",
            "11111111111111111",
            "1HGCM82633A004352",
        ] {
            Vin::parse(vin).unwrap_or_else(|e| panic!("{vin}: {e}"));
        }
    }

    #[test]
    fn rejects_wrong_check_digit_and_names_it() {
        let err = Vin::parse("1M8GDM9A1KP042788").unwrap_err();
        assert_eq!(
            err,
            VinError::CheckDigit {
                found: '1',
                expected: 'X'
            }
        );
    }

    #[test]
    fn rejects_bad_length_and_letters() {
        assert_eq!(Vin::parse("ABC").unwrap_err(), VinError::Length(3));
        assert!(matches!(
            Vin::parse("1M8GDM9AXKP04278O").unwrap_err(),
            VinError::Character {
                ch: 'O',
                position: 17
            }
        ));
    }

    #[test]
    fn generated_vins_are_valid_and_distinct() {
        let a = Vin::from_serial("1FL", 1);
        let b = Vin::from_serial("1FL", 2);
        assert_ne!(a, b);
        for v in [a, b, Vin::from_serial("WVW", 9_999_999)] {
            Vin::parse(v.as_str()).unwrap_or_else(|e| panic!("{v}: {e}"));
        }
    }

    #[test]
    fn legacy_accepts_random_letters_without_check_digit() {
        assert!(Vin::parse_legacy("QWERTYUIOPASDFGH1").is_ok());
        assert_eq!(
            Vin::parse_legacy("QWERTYUIOPASDFGh1").unwrap_err(),
            VinError::LegacyCharacter {
                ch: 'h',
                position: 16
            }
        );
        assert_eq!(
            Vin::parse_legacy("QWERTYUIOPASDFGH").unwrap_err(),
            VinError::Length(16)
        );
    }
}
