//! A small checker of real answers against the admin API's OpenAPI 3.1 document: the
//! operation is documented, the status is one of its responses, documented headers are
//! present, and a JSON body fits its schema (required members present, types right, no
//! undocumented members). It knows the parts of JSON Schema that the document uses.

use serde_json::Value;

/// Checks one answer; panics with what does not fit.
pub fn check_answer(
    document: &Value,
    method: &str,
    path: &str,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) {
    let path = path.split('?').next().unwrap_or_default();
    let template =
        template_of(document, path).unwrap_or_else(|| panic!("{method} {path} is not documented"));
    let operation = &document["paths"][template.as_str()][method.to_lowercase()];
    assert!(
        operation.is_object(),
        "{method} {template} is not documented"
    );
    let response = &operation["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {template} answered {status}, which is not documented"
    );
    if let Some(documented) = response["headers"].as_object() {
        for name in documented.keys() {
            assert!(
                headers.contains_key(name.as_str()),
                "{method} {template} {status} lacks the documented header {name}"
            );
        }
    }
    let schema = &response["content"]["application/json"]["schema"];
    if body.is_empty() {
        assert!(
            schema.is_null(),
            "{method} {template} {status} documents a body but sent none"
        );
        return;
    }
    assert!(
        !schema.is_null(),
        "{method} {template} {status} sent an undocumented body"
    );
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{method} {template} {status}: the body is not JSON: {e}"));
    let at = format!("{method} {template} {status}");
    if let Err(problem) = validate(document, schema, &value, "$") {
        panic!("{at}: {problem}\nbody: {value}");
    }
}

/// The documented path template that `path` is an instance of.
fn template_of(document: &Value, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    document["paths"].as_object()?.keys().find_map(|template| {
        let parts: Vec<&str> = template.split('/').collect();
        let fits = parts.len() == segments.len()
            && parts
                .iter()
                .zip(&segments)
                .all(|(part, segment)| part.starts_with('{') || part == segment);
        fits.then(|| template.clone())
    })
}

/// Checks `value` against `schema`; the error names the JSON path that does not fit.
pub fn validate(document: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .ok_or_else(|| format!("{at}: unsupported reference {reference}"))?;
        let target = &document["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("{at}: {reference} is not in the document"));
        }
        return validate(document, target, value, at);
    }
    for keyword in ["oneOf", "anyOf"] {
        if let Some(alternatives) = schema[keyword].as_array() {
            let fits = alternatives
                .iter()
                .any(|alternative| validate(document, alternative, value, at).is_ok());
            if !fits {
                return Err(format!("{at}: fits none of the {keyword} alternatives"));
            }
        }
    }
    if let Some(parts) = schema["allOf"].as_array() {
        for part in parts {
            validate(document, part, value, at)?;
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => return Ok(()),
    };
    if !types.iter().any(|t| has_type(value, t)) {
        return Err(format!("{at}: expected {types:?}, found {value}"));
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return Err(format!("{at}: {value} is not one of {allowed:?}"));
    }
    match value {
        Value::Object(members) => check_object(document, schema, members, at),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                validate(document, &schema["items"], item, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn check_object(
    document: &Value,
    schema: &Value,
    members: &serde_json::Map<String, Value>,
    at: &str,
) -> Result<(), String> {
    let properties = schema["properties"].as_object();
    for required in schema["required"].as_array().into_iter().flatten() {
        let name = required.as_str().unwrap_or_default();
        if !members.contains_key(name) {
            return Err(format!("{at}: the required member {name} is missing"));
        }
    }
    for (name, member) in members {
        let Some(property) = properties.and_then(|p| p.get(name)) else {
            if schema["additionalProperties"].is_object()
                || schema["additionalProperties"] == Value::Bool(true)
            {
                continue;
            }
            return Err(format!("{at}: the member {name} is not documented"));
        };
        validate(document, property, member, &format!("{at}.{name}"))?;
    }
    Ok(())
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

#[test]
fn the_checker_refuses_what_does_not_fit() {
    let document = serde_json::json!({"components": {"schemas": {"Item": {
        "type": "object", "required": ["id"],
        "properties": {"id": {"type": "string"}, "at": {"type": ["integer", "null"]}}
    }}}});
    let item = serde_json::json!({"$ref": "#/components/schemas/Item"});
    let ok = serde_json::json!({"id": "a", "at": null});
    assert!(validate(&document, &item, &ok, "$").is_ok());
    for wrong in [
        serde_json::json!({"at": 1}),
        serde_json::json!({"id": 1}),
        serde_json::json!({"id": "a", "extra": true}),
        serde_json::json!({"id": "a", "at": "soon"}),
        serde_json::json!([]),
    ] {
        assert!(validate(&document, &item, &wrong, "$").is_err(), "{wrong}");
    }
}
