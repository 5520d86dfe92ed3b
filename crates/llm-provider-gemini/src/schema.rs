//! JSON Schema as Gemini's `responseJsonSchema` and `parametersJsonSchema` take it.
//!
//! The API reference of `responseJsonSchema` lists what Gemini reads: `$id`, `$defs`, `$ref`,
//! `$anchor`, `type`, `format`, `title`, `description`, `enum` (strings and numbers), `items`,
//! `prefixItems`, `minItems`, `maxItems`, `minimum`, `maximum`, `anyOf`, `oneOf` (read as `anyOf`),
//! `properties`, `additionalProperties`, `required`, and the non-standard `propertyOrdering`; "if
//! `$ref` is set on a sub-schema, no other properties, except for those starting as a `$`, may be
//! set", and cyclic references are unrolled only to a limited degree. Keywords outside that list are
//! rejected (`$schema`, which schemars adds) or at best ignored, so [`normalise`] keeps only the list.
//!
//! Dropping a keyword only loosens what Gemini enforces: the cascade validates every answer (and every
//! tool call's arguments) against the caller's original schema, so nothing unchecked gets through.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// Keywords copied as they are.
const PLAIN: [&str; 11] = [
    "$id",
    "$anchor",
    "type",
    "title",
    "description",
    "required",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "propertyOrdering",
];

/// The `format` values JSON Schema defines; others (schemars' `uint32`, `double`, …) are dropped.
const FORMATS: [&str; 19] = [
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// `schema` rewritten for Gemini:
/// - local references (`#/$defs/X`, `#/definitions/X`) are inlined, with the referring schema's own
///   keywords (a `description` beside the `$ref`) kept over the definition's; a definition that
///   refers to itself (directly or not) stays a `$ref` into `$defs`, alone, as Gemini requires;
/// - `allOf` parts are merged into their schema (properties and `required` united), `const` becomes a
///   one-value `enum`, `oneOf` becomes `anyOf`, `enum` keeps its strings and numbers;
/// - a property that leads into a kept cyclic `$ref` is taken out of `required` (Gemini unrolls
///   cycles only through optional properties);
/// - every other keyword outside Gemini's list is dropped (`$schema`, `$comment`, `default`,
///   `examples`, `pattern`, `minLength`, `exclusiveMinimum`, `not`, …).
pub(crate) fn normalise(schema: &Value) -> Value {
    let schema = &root_as_definition(schema);
    let defs = definitions(schema);
    let cyclic = cyclic_definitions(&defs);
    let mut walker = Walker {
        defs: &defs,
        cyclic: &cyclic,
        used: BTreeSet::new(),
        inlining: Vec::new(),
    };
    let mut out = walker.schema(schema);
    // A kept `$ref` needs its definition; normalising a definition may use further ones.
    let mut kept = Map::new();
    while let Some(name) = walker
        .used
        .iter()
        .find(|name| !kept.contains_key(*name))
        .cloned()
    {
        let body = defs
            .get(&name)
            .map_or(Value::Bool(true), |d| walker.schema(d));
        kept.insert(name, body);
    }
    if let (Some(object), false) = (out.as_object_mut(), kept.is_empty()) {
        object.insert("$defs".to_owned(), Value::Object(kept));
    }
    out
}

/// `schema` with references to the root itself (`"$ref": "#"`, as schemars writes a recursive type)
/// pointing to a copy of the root in `$defs` instead, so they are handled like any cyclic definition
/// (the root itself stays an object schema, as `parametersJsonSchema` needs).
fn root_as_definition(schema: &Value) -> Value {
    fn retarget(value: &mut Value, pointer: &str) -> bool {
        match value {
            Value::Object(map) => {
                let mut found = false;
                if map.get("$ref").and_then(Value::as_str) == Some("#") {
                    map.insert("$ref".to_owned(), Value::String(pointer.to_owned()));
                    found = true;
                }
                map.values_mut()
                    .fold(found, |found, v| retarget(v, pointer) | found)
            }
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |found, v| retarget(v, pointer) | found),
            _ => false,
        }
    }
    let taken = definitions(schema);
    let name = (0..)
        .map(|i| {
            if i == 0 {
                "root".to_owned()
            } else {
                format!("root_{i}")
            }
        })
        .find(|name| !taken.contains_key(name))
        .unwrap_or_default();
    let mut out = schema.clone();
    if !retarget(&mut out, &format!("#/$defs/{name}")) {
        return out;
    }
    let mut body = out.clone();
    if let Some(body) = body.as_object_mut() {
        body.remove("$defs");
        body.remove("definitions");
    }
    if let Some(root) = out.as_object_mut() {
        let defs = root
            .entry("$defs")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(defs) = defs.as_object_mut() {
            defs.insert(name, body);
        }
    }
    out
}

/// The root's `$defs` and `definitions` by name (`$defs` wins a clash).
fn definitions(schema: &Value) -> BTreeMap<String, Value> {
    ["definitions", "$defs"]
        .iter()
        .filter_map(|key| schema.get(key).and_then(Value::as_object))
        .flatten()
        .map(|(name, body)| (name.clone(), body.clone()))
        .collect()
}

/// The definition a local reference names.
fn ref_name(reference: &str) -> Option<&str> {
    reference
        .strip_prefix("#/$defs/")
        .or_else(|| reference.strip_prefix("#/definitions/"))
}

/// Every local reference inside `value`, by definition name.
fn references(value: &Value, into: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(name) = map.get("$ref").and_then(Value::as_str).and_then(ref_name) {
                into.insert(name.to_owned());
            }
            map.values().for_each(|v| references(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, into)),
        _ => {}
    }
}

/// The definitions that can reach themselves through references: they cannot be inlined.
fn cyclic_definitions(defs: &BTreeMap<String, Value>) -> BTreeSet<String> {
    let edges: BTreeMap<&str, BTreeSet<String>> = defs
        .iter()
        .map(|(name, body)| {
            let mut out = BTreeSet::new();
            references(body, &mut out);
            (name.as_str(), out)
        })
        .collect();
    defs.keys()
        .filter(|start| {
            let mut seen = BTreeSet::new();
            let mut todo: Vec<&str> = edges
                .get(start.as_str())
                .map(|e| e.iter().map(String::as_str).collect())
                .unwrap_or_default();
            while let Some(next) = todo.pop() {
                if next == start.as_str() {
                    return true;
                }
                if seen.insert(next) {
                    todo.extend(edges.get(next).into_iter().flatten().map(String::as_str));
                }
            }
            false
        })
        .cloned()
        .collect()
}

struct Walker<'a> {
    defs: &'a BTreeMap<String, Value>,
    cyclic: &'a BTreeSet<String>,
    /// Cyclic definitions referred to from the output (they go into its `$defs`).
    used: BTreeSet<String>,
    /// Definitions being inlined, innermost last (a guard: cycles are never inlined).
    inlining: Vec<String>,
}

impl Walker<'_> {
    fn schema(&mut self, value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(self.object(map)),
            other => other.clone(),
        }
    }

    fn object(&mut self, map: &Map<String, Value>) -> Map<String, Value> {
        let mut map = map.clone();
        if let Some(reference) = map.remove("$ref") {
            match self.reference(&reference) {
                Reference::Keep(kept) => return kept,
                Reference::Inline(body) => {
                    // The referring schema's own keywords (a description) win over the definition's.
                    let mut merged = body;
                    merged.extend(map);
                    map = merged;
                }
            }
        }
        if let Some(Value::Array(parts)) = map.remove("allOf") {
            for part in parts {
                if let Value::Object(part) = self.schema(&part) {
                    merge_all_of(&mut map, part);
                }
            }
        }
        let mut out = Map::new();
        for (key, value) in map {
            self.keyword(&mut out, &key, value);
        }
        optional_cycles(&mut out);
        out
    }

    /// What a `$ref` becomes: a kept reference (cyclic, or not local) or the definition to inline.
    fn reference(&mut self, reference: &Value) -> Reference {
        let text = reference.as_str().unwrap_or_default();
        let Some(name) = ref_name(text).filter(|name| self.defs.contains_key(*name)) else {
            return Reference::Keep(Map::from_iter([("$ref".to_owned(), reference.clone())]));
        };
        if self.cyclic.contains(name) || self.inlining.iter().any(|n| n == name) {
            self.used.insert(name.to_owned());
            let pointer = Value::String(format!("#/$defs/{name}"));
            return Reference::Keep(Map::from_iter([("$ref".to_owned(), pointer)]));
        }
        self.inlining.push(name.to_owned());
        let defs = self.defs;
        let body = match defs.get(name).map(|d| self.schema(d)) {
            Some(Value::Object(body)) => body,
            _ => Map::new(),
        };
        self.inlining.pop();
        Reference::Inline(body)
    }

    /// Copies (or rewrites) one keyword into `out`, or drops it.
    fn keyword(&mut self, out: &mut Map<String, Value>, key: &str, value: Value) {
        match key {
            "properties" => {
                let Value::Object(properties) = value else {
                    return;
                };
                let properties = properties
                    .into_iter()
                    .map(|(name, schema)| (name, self.schema(&schema)))
                    .collect();
                out.insert(key.to_owned(), Value::Object(properties));
            }
            "items" | "additionalProperties" => {
                out.insert(key.to_owned(), self.schema(&value));
            }
            "anyOf" | "oneOf" | "prefixItems" => {
                let Value::Array(items) = value else { return };
                let items: Vec<Value> = items.iter().map(|s| self.schema(s)).collect();
                let key = if key == "oneOf" { "anyOf" } else { key };
                match out.get_mut(key) {
                    Some(Value::Array(existing)) => existing.extend(items),
                    _ => {
                        out.insert(key.to_owned(), Value::Array(items));
                    }
                }
            }
            "enum" => {
                if let Some(values) = enum_values(value.as_array().map_or(&[][..], Vec::as_slice)) {
                    out.insert(key.to_owned(), values);
                }
            }
            "const" => {
                if let Some(values) = enum_values(std::slice::from_ref(&value)) {
                    out.entry("enum").or_insert(values);
                }
            }
            "format" if value.as_str().is_some_and(|f| FORMATS.contains(&f)) => {
                out.insert(key.to_owned(), value);
            }
            _ if PLAIN.contains(&key) => {
                out.insert(key.to_owned(), value);
            }
            _ => {}
        }
    }
}

enum Reference {
    Keep(Map<String, Value>),
    Inline(Map<String, Value>),
}

/// Takes the properties that lead into a kept (cyclic) `$ref` out of `required`: Gemini unrolls
/// cycles only through non-required properties. The caller's own schema still requires them when the
/// answer is validated.
fn optional_cycles(out: &mut Map<String, Value>) {
    fn has_ref(value: &Value) -> bool {
        match value {
            Value::Object(map) => map.contains_key("$ref") || map.values().any(has_ref),
            Value::Array(items) => items.iter().any(has_ref),
            _ => false,
        }
    }
    let cyclic: Vec<String> = match out.get("properties") {
        Some(Value::Object(properties)) => properties
            .iter()
            .filter(|(_, schema)| has_ref(schema))
            .map(|(name, _)| name.clone())
            .collect(),
        _ => return,
    };
    if let Some(Value::Array(required)) = out.get_mut("required") {
        required.retain(|name| !name.as_str().is_some_and(|n| cyclic.iter().any(|c| c == n)));
        if required.is_empty() {
            out.remove("required");
        }
    }
}

/// The strings and numbers of an `enum` (Gemini takes no others); `None` when none are left.
fn enum_values(values: &[Value]) -> Option<Value> {
    let kept: Vec<Value> = values
        .iter()
        .filter(|v| v.is_string() || v.is_number())
        .cloned()
        .collect();
    (!kept.is_empty()).then_some(Value::Array(kept))
}

/// Merges one `allOf` part into its schema: properties and `required` are united; other keywords are
/// taken when the schema has none of its own.
fn merge_all_of(map: &mut Map<String, Value>, part: Map<String, Value>) {
    for (key, value) in part {
        match (key.as_str(), map.get_mut(&key), value) {
            ("properties", Some(Value::Object(mine)), Value::Object(theirs)) => {
                for (name, schema) in theirs {
                    mine.entry(name).or_insert(schema);
                }
            }
            ("required", Some(Value::Array(mine)), Value::Array(theirs)) => {
                for name in theirs {
                    if !mine.contains(&name) {
                        mine.push(name);
                    }
                }
            }
            (_, Some(_), _) => {}
            (_, None, value) => {
                map.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_schema_gemini_reads_whole_is_unchanged() {
        // The crewAI capture's schema (generate.request.response-json-schema.json).
        let schema = json!({"description": "Structured output for analysis results.", "properties": {"topic": {"description": "The topic analyzed", "title": "Topic", "type": "string"}, "key_points": {"description": "Key insights from the analysis", "items": {"type": "string"}, "title": "Key Points", "type": "array"}, "summary": {"description": "Brief summary of findings", "title": "Summary", "type": "string"}}, "required": ["topic", "key_points", "summary"], "title": "AnalysisResult", "type": "object", "additionalProperties": false, "propertyOrdering": ["topic", "key_points", "summary"]});
        assert_eq!(normalise(&schema), schema);
    }

    #[test]
    fn refs_are_inlined_with_their_siblings_kept() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {
                "home": {"$ref": "#/$defs/Address", "description": "Where they live"},
                "work": {"allOf": [{"$ref": "#/definitions/Office"}], "description": "Office"}
            },
            "$defs": {"Address": {"type": "object", "description": "An address", "properties": {"city": {"type": "string", "minLength": 1}}}},
            "definitions": {"Office": {"$ref": "#/$defs/Address"}}
        });
        let address = |description: &str| json!({"type": "object", "description": description, "properties": {"city": {"type": "string"}}});
        assert_eq!(
            normalise(&schema),
            json!({"type": "object", "properties": {"home": address("Where they live"), "work": address("Office")}})
        );
    }

    #[test]
    fn a_cyclic_definition_stays_a_lone_ref() {
        let schema = json!({
            "$ref": "#/$defs/Node",
            "$defs": {"Node": {"type": "object", "required": ["name", "children"], "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node", "description": "a child"}}
            }}}
        });
        assert_eq!(
            normalise(&schema),
            json!({
                "$ref": "#/$defs/Node",
                "$defs": {"Node": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}
                }}}
            })
        );
    }

    #[test]
    fn a_reference_to_the_root_points_to_a_copy_of_it() {
        let schema = json!({"type": "object", "title": "Tree", "properties": {
            "children": {"type": "array", "items": {"$ref": "#"}}
        }});
        let body = json!({"type": "object", "title": "Tree", "properties": {
            "children": {"type": "array", "items": {"$ref": "#/$defs/root"}}
        }});
        let mut expected = body.clone();
        expected["$defs"] = json!({"root": body});
        assert_eq!(normalise(&schema), expected);
    }

    #[test]
    fn keywords_outside_the_list_are_dropped_or_rewritten() {
        let schema = json!({
            "type": "object",
            "$comment": "x",
            "properties": {
                "kind": {"const": "point"},
                "size": {"type": "integer", "format": "uint32", "minimum": 0, "exclusiveMaximum": 10, "default": 1},
                "when": {"type": "string", "format": "date-time", "pattern": "^2"},
                "mode": {"enum": ["a", 1, null, true]},
                "shape": {"oneOf": [{"type": "string"}, {"type": "null"}]}
            }
        });
        assert_eq!(
            normalise(&schema),
            json!({"type": "object", "properties": {
                "kind": {"enum": ["point"]},
                "size": {"type": "integer", "minimum": 0},
                "when": {"type": "string", "format": "date-time"},
                "mode": {"enum": ["a", 1]},
                "shape": {"anyOf": [{"type": "string"}, {"type": "null"}]}
            }})
        );
    }
}
