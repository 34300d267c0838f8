//! The probe's JSON report checked against what docs/probe.md promises, read from the tables of
//! that file itself (built in, so that a copied test binary has it too):
//!
//! - the "Keys" table (`| Key | Value | Meaning |`): every object of the report has exactly the
//!   keys the table lists for its place (`*` standing for any key there), each with a value the
//!   Value cell allows;
//! - the status tables (first column `` `<object>.status` ``): every such object matches at least
//!   one row, its status and each other column's key;
//! - the errno list ("Errno names"), for `errno` cells;
//! - and the one rule the tables cannot say: without a context (`aio.status` other than
//!   `available`) the keys listed after "Unless `aio.status` is `available`" are null, and with
//!   one they are not.

#![allow(dead_code)]

use serde_json::Value;

pub const DOC: &str = include_str!("../../docs/probe.md");

/// The schema version docs/probe.md describes.
pub const VERSION: u64 = 1;

/// One alternative of a Value cell.
#[derive(Debug, Clone, PartialEq)]
enum Alt {
    /// `` `word` ``: that value.
    Literal(Value),
    /// string, number, boolean, object, errno, null.
    Type(String),
}

const TYPES: &[&str] = &["string", "number", "boolean", "object", "errno", "null"];

/// A key path, `*` matching any key at its place.
type Path = Vec<String>;

struct StatusTable {
    /// The keys of the columns (the first is `<object>.status`).
    columns: Vec<Path>,
    rows: Vec<Vec<Vec<Alt>>>,
}

pub struct Schema {
    keys: Vec<(Path, Vec<Alt>)>,
    tables: Vec<StatusTable>,
    errnos: Vec<String>,
    /// The keys that are null without a context.
    need_context: Vec<String>,
}

fn path(key: &str) -> Path {
    key.split('.').map(String::from).collect()
}

fn backticked(cell: &str) -> Option<&str> {
    cell.strip_prefix('`')?.strip_suffix('`')
}

fn parse_alts(cell: &str) -> Result<Vec<Alt>, String> {
    let alts: Result<Vec<Alt>, String> = cell
        .split(',')
        .flat_map(|part| part.split(" or "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| match backticked(t) {
            Some(lit) => Ok(Alt::Literal(
                serde_json::from_str(lit).unwrap_or_else(|_| Value::String(lit.to_string())),
            )),
            None if TYPES.contains(&t) => Ok(Alt::Type(t.to_string())),
            None => Err(format!("{t:?} is neither a `value` nor one of {TYPES:?}")),
        })
        .collect();
    match alts {
        Ok(a) if a.is_empty() => Err(format!("empty Value cell {cell:?}")),
        other => other,
    }
}

/// The tables of `doc`: each a list of rows (header first, the `|---|` line left out), each row
/// its cells.
fn tables(doc: &str) -> Vec<Vec<Vec<String>>> {
    let mut out: Vec<Vec<Vec<String>>> = Vec::new();
    let mut in_table = false;
    let mut fence = false;
    for line in doc.lines() {
        if line.starts_with("```") {
            fence = !fence;
        }
        let line = line.trim();
        if fence || !line.starts_with('|') {
            in_table = false;
            continue;
        }
        let cells: Vec<String> = line
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect();
        if cells
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue;
        }
        if !in_table {
            out.push(Vec::new());
            in_table = true;
        }
        out.last_mut().unwrap().push(cells);
    }
    out
}

fn matches_path(pattern: &[String], concrete: &[String]) -> bool {
    pattern.len() == concrete.len()
        && pattern
            .iter()
            .zip(concrete)
            .all(|(p, c)| p == "*" || p == c)
}

/// docs/probe.md's promises, parsed; panics with the reason if the file is not as this expects.
pub fn schema() -> Schema {
    parse(DOC).unwrap_or_else(|e| panic!("docs/probe.md: {e}"))
}

fn parse(doc: &str) -> Result<Schema, String> {
    let mut keys = Vec::new();
    let mut tables_out = Vec::new();
    for table in tables(doc) {
        let header = &table[0];
        if header[0] == "Key" {
            for row in &table[1..] {
                let key =
                    backticked(&row[0]).ok_or(format!("key {:?} not in backticks", row[0]))?;
                let alts = parse_alts(&row[1]).map_err(|e| format!("key {key}: {e}"))?;
                keys.push((path(key), alts));
            }
        } else if let Some(status) = backticked(&header[0]).filter(|k| k.ends_with(".status")) {
            let columns: Vec<Path> = header
                .iter()
                .map_while(|c| backticked(c))
                .map(path)
                .collect();
            let parent = &path(status)[..path(status).len() - 1];
            if columns.iter().any(|c| c[..c.len() - 1] != *parent) {
                return Err(format!("the {status} table names keys of other objects"));
            }
            let mut rows = Vec::new();
            for row in &table[1..] {
                let cells: Result<Vec<Vec<Alt>>, String> =
                    row[..columns.len()].iter().map(|c| parse_alts(c)).collect();
                rows.push(cells.map_err(|e| format!("{status} table: {e}"))?);
            }
            tables_out.push(StatusTable { columns, rows });
        }
    }
    if keys.is_empty() {
        return Err("no Keys table".into());
    }
    let errnos_section = doc
        .split("## Errno names")
        .nth(1)
        .ok_or("no Errno names section")?;
    let errnos: Vec<String> = errnos_section
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect();
    if errnos.len() < 10 || errnos.iter().any(|e| !is_errno_shape(e)) {
        return Err(format!(
            "the Errno names are not a list of names: {errnos:?}"
        ));
    }
    let rule = doc
        .split("Unless `aio.status` is `available`,")
        .nth(1)
        .and_then(|rest| rest.split(" are null").next())
        .ok_or("no \"Unless `aio.status` is `available`, ... are null\" rule")?;
    let need_context: Vec<String> = rule
        .split('`')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect();
    let schema = Schema {
        keys,
        tables: tables_out,
        errnos,
        need_context,
    };
    schema.consistent()?;
    Ok(schema)
}

fn is_errno_shape(name: &str) -> bool {
    name.len() > 1
        && name.starts_with('E')
        && name[1..]
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

impl Schema {
    fn spec(&self, key: &[String]) -> Option<&[Alt]> {
        self.keys
            .iter()
            .find(|(k, _)| k.as_slice() == key)
            .map(|(_, a)| a.as_slice())
    }

    /// The file agrees with itself: every status table's statuses are those the Keys table
    /// lists for its status key, its keys are keys of the Keys table, and the keys of the
    /// context rule exist.
    fn consistent(&self) -> Result<(), String> {
        for t in &self.tables {
            let name = t.columns[0].join(".");
            for column in &t.columns {
                if self.spec(column).is_none() {
                    return Err(format!(
                        "the {name} table's key {} is not in Keys",
                        column.join(".")
                    ));
                }
            }
            let listed: Vec<&Alt> = self.spec(&t.columns[0]).unwrap().iter().collect();
            let mut in_rows: Vec<&Alt> = t.rows.iter().flat_map(|r| &r[0]).collect();
            in_rows.dedup();
            for alt in &listed {
                if !in_rows.contains(alt) {
                    return Err(format!("{name}: {alt:?} has no row in its table"));
                }
            }
            for alt in &in_rows {
                if !listed.contains(alt) {
                    return Err(format!("{name}: row {alt:?} is not a value Keys lists"));
                }
            }
        }
        for key in &self.need_context {
            if self.spec(&path(key)).is_none() {
                return Err(format!("the context rule's {key} is not in Keys"));
            }
        }
        if self.spec(&path("schema")) != Some(&[Alt::Literal(Value::from(VERSION))][..]) {
            return Err(format!("the schema key is not `{VERSION}`"));
        }
        Ok(())
    }

    fn allows(&self, alts: &[Alt], value: &Value) -> bool {
        alts.iter().any(|alt| match alt {
            Alt::Literal(v) => v == value,
            Alt::Type(t) => match t.as_str() {
                "string" => value.is_string(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                "object" => value.is_object(),
                "null" => value.is_null(),
                "errno" => value.as_str().is_some_and(|e| {
                    self.errnos.iter().any(|n| n == e)
                        || (e.len() > 1
                            && e.starts_with('E')
                            && e[1..].chars().all(|c| c.is_ascii_digit()))
                }),
                _ => unreachable!(),
            },
        })
    }

    /// Every way `report` breaks the promises (none: it follows them).
    pub fn problems(&self, report: &Value) -> Vec<String> {
        let mut out = Vec::new();
        if !report.is_object() {
            return vec!["the report is not a JSON object".into()];
        }
        self.walk(report, &mut Vec::new(), &mut out);
        for t in &self.tables {
            let parent = &t.columns[0][..t.columns[0].len() - 1];
            for (at, object) in instances(report, parent) {
                let Some(object) = object.as_object() else {
                    continue; // null: checked by the Keys table
                };
                let get = |c: &Path| object.get(c.last().unwrap()).unwrap_or(&Value::Null);
                let fits = |row: &Vec<Vec<Alt>>| {
                    t.columns
                        .iter()
                        .zip(row)
                        .all(|(c, alts)| self.allows(alts, get(c)))
                };
                if !t.rows.iter().any(fits) {
                    out.push(format!(
                        "{at}: {} matches no row of the {} table",
                        Value::Object(object.clone()),
                        t.columns[0].join(".")
                    ));
                }
            }
        }
        let available = report["aio"]["status"] == "available";
        for key in &self.need_context {
            match (available, report.get(key).map(Value::is_null)) {
                (false, Some(false)) => out.push(format!("{key} is not null without a context")),
                (true, Some(true)) => out.push(format!("{key} is null with a context")),
                _ => {}
            }
        }
        out
    }

    fn walk(&self, value: &Value, at: &mut Vec<String>, out: &mut Vec<String>) {
        let Some(object) = value.as_object() else {
            return;
        };
        let name = |at: &[String], key: &str| {
            let mut p = at.to_vec();
            p.push(key.to_string());
            p.join(".")
        };
        let children: Vec<&(Path, Vec<Alt>)> = self
            .keys
            .iter()
            .filter(|(k, _)| k.len() == at.len() + 1 && matches_path(&k[..at.len()], at))
            .collect();
        for (k, _) in &children {
            if !object.contains_key(k.last().unwrap()) {
                out.push(format!("{} is missing", name(at, k.last().unwrap())));
            }
        }
        for (key, child) in object {
            let Some((_, alts)) = children.iter().find(|(k, _)| k.last() == Some(key)) else {
                out.push(format!("{} is not documented", name(at, key)));
                continue;
            };
            if !self.allows(alts, child) {
                out.push(format!(
                    "{} = {child} is not one of {alts:?}",
                    name(at, key)
                ));
            }
            at.push(key.clone());
            self.walk(child, at, out);
            at.pop();
        }
    }
}

/// The values at `pattern` in `report` (`*` expanded), with their paths.
fn instances<'a>(report: &'a Value, pattern: &[String]) -> Vec<(String, &'a Value)> {
    let mut found = vec![(String::new(), report)];
    for segment in pattern {
        found = found
            .into_iter()
            .flat_map(|(at, v)| {
                let children: Vec<(String, &Value)> = match v.as_object() {
                    Some(o) => o
                        .iter()
                        .filter(|(k, _)| segment == "*" || *k == segment)
                        .map(|(k, c)| {
                            (
                                if at.is_empty() {
                                    k.clone()
                                } else {
                                    format!("{at}.{k}")
                                },
                                c,
                            )
                        })
                        .collect(),
                    None => Vec::new(),
                };
                children
            })
            .collect();
    }
    found
}
