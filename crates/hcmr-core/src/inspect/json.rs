//! CBOR -> JSON, as `hcmr inspect` prints it.

use super::*;

// ---------------------------------------------------------------------------------------------
// CBOR -> JSON
// ---------------------------------------------------------------------------------------------

/// Converts a CBOR value to JSON for display:
///
/// * integers as numbers (as strings beyond the 64-bit range);
/// * byte strings as lower-case hex strings;
/// * floats as numbers (`"NaN"`, `"Infinity"`, `"-Infinity"` as strings: JSON has none);
/// * tags as `{"tag": n, "value": ...}`;
/// * maps as objects whose keys are the text keys as they are, integer keys in decimal, and any
///   other key in CBOR diagnostic style (`h'0a0b'`, `true`, `1.5`, or the JSON of the key); a
///   key whose string was already used gets `#2`, `#3`, ... appended, so nothing is lost.
pub fn cbor_to_json(v: &Value) -> Json {
    match v {
        Value::Integer(i) => int_json(i128::from(*i)),
        Value::Bytes(b) => Json::String(hex::encode(b)),
        Value::Float(f) => float_json(*f),
        Value::Text(t) => Json::String(t.clone()),
        Value::Bool(b) => Json::Bool(*b),
        Value::Null => Json::Null,
        Value::Tag(t, inner) => json!({ "tag": t, "value": cbor_to_json(inner) }),
        Value::Array(items) => Json::Array(items.iter().map(cbor_to_json).collect()),
        Value::Map(entries) => map_to_json(entries),
        other => Json::String(format!("{other:?}")),
    }
}

fn int_json(n: i128) -> Json {
    if let Ok(i) = i64::try_from(n) {
        Json::from(i)
    } else if let Ok(u) = u64::try_from(n) {
        Json::from(u)
    } else {
        Json::String(n.to_string())
    }
}

fn float_json(f: f64) -> Json {
    match serde_json::Number::from_f64(f) {
        Some(n) => Json::Number(n),
        None if f.is_nan() => Json::String("NaN".into()),
        None if f > 0.0 => Json::String("Infinity".into()),
        None => Json::String("-Infinity".into()),
    }
}

pub(super) fn map_to_json(entries: &[(Value, Value)]) -> Json {
    let mut obj = Map::new();
    for (k, v) in entries {
        let base = key_string(k);
        let mut key = base.clone();
        let mut n = 2;
        while obj.contains_key(&key) {
            key = format!("{base}#{n}");
            n += 1;
        }
        obj.insert(key, cbor_to_json(v));
    }
    Json::Object(obj)
}

/// A map key as a JSON object key.
pub(super) fn key_string(k: &Value) -> String {
    match k {
        Value::Text(t) => t.clone(),
        Value::Integer(i) => i128::from(*i).to_string(),
        Value::Bytes(b) => format!("h'{}'", hex::encode(b)),
        Value::Float(f) => match float_json(*f) {
            Json::String(s) => s,
            other => other.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        other => cbor_to_json(other).to_string(),
    }
}
