//! [`Catalogue`]: the makes and models vehicles are drawn from, checked once for the config
//! file (`vehicles.catalogue`) and for the vehicle's `VEHICLE_CATALOGUE` alike.

use crate::Vin;
use crate::config::CatalogueEntry;
use crate::event::MAX_NAME_LEN;

/// The catalogue used when `VEHICLE_CATALOGUE` is not set (the one of `config.master.toml`).
pub const DEFAULT_CATALOGUE: &str = r#"[
  {"make": "Volvo", "wmi": "YV1", "models": ["XC40", "XC60", "V60"]},
  {"make": "Scania", "wmi": "YS2", "models": ["R450", "P280"]},
  {"make": "Ford", "wmi": "1FT", "models": ["Transit", "F-150"]}
]"#;

/// A checked catalogue: at least one make, each with a usable WMI and at least one model.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalogue(pub Vec<CatalogueEntry>);

impl Catalogue {
    /// `entries`, checked; the reason names the entry.
    pub fn new(entries: Vec<CatalogueEntry>) -> Result<Self, String> {
        if entries.is_empty() {
            return Err("the catalogue is empty".into());
        }
        for (i, entry) in entries.iter().enumerate() {
            check_entry(i, entry)?;
        }
        Ok(Self(entries))
    }

    /// The catalogue as JSON, as `VEHICLE_CATALOGUE` carries it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).expect("the catalogue serializes")
    }
}

fn check_entry(i: usize, entry: &CatalogueEntry) -> Result<(), String> {
    let name_ok = |name: &str| !name.trim().is_empty() && name.chars().count() <= MAX_NAME_LEN;
    if !name_ok(&entry.make) {
        return Err(format!(
            "entry {i}: make {:?} must have 1 to {MAX_NAME_LEN} characters",
            entry.make
        ));
    }
    if entry.wmi.chars().count() != 3 {
        return Err(format!(
            "entry {i} ({}): wmi {:?} must have 3 characters",
            entry.make, entry.wmi
        ));
    }
    // Checked before `Vin::from_serial`, which expects the VIN alphabet.
    let vin_char = |c: char| c.is_ascii_digit() || (c.is_ascii_uppercase() && !"IOQ".contains(c));
    if !entry.wmi.chars().all(vin_char) {
        return Err(format!(
            "entry {i} ({}): wmi {:?} cannot start a VIN (digits and A-Z except I, O, Q)",
            entry.make, entry.wmi
        ));
    }
    if let Err(e) = Vin::parse(Vin::from_serial(&entry.wmi, 0).as_str()) {
        return Err(format!(
            "entry {i} ({}): wmi {:?} cannot start a VIN: {e}",
            entry.make, entry.wmi
        ));
    }
    if entry.models.is_empty() {
        return Err(format!("entry {i} ({}): no models", entry.make));
    }
    if let Some(model) = entry.models.iter().find(|m| !name_ok(m)) {
        return Err(format!(
            "entry {i} ({}): model {model:?} must have 1 to {MAX_NAME_LEN} characters",
            entry.make
        ));
    }
    Ok(())
}

/// Parses and checks a catalogue given as JSON (`VEHICLE_CATALOGUE`).
pub fn parse_catalogue(text: &str) -> Result<Catalogue, String> {
    let entries: Vec<CatalogueEntry> = serde_json::from_str(text)
        .map_err(|e| format!("not a JSON array of {{make, wmi, models}}: {e}"))?;
    Catalogue::new(entries)
}
