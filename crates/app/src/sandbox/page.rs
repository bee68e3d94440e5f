//! Rest.li collections: `start`/`count` paging with a `paging` object, and the `search=(…)`
//! criteria of LinkedIn's Marketing finders (docs/routes.md "Paging" and "Search criteria").

use scopegate_core::restli::{self, Value as Restli};
use serde_json::{json, Value};

use super::{Answer, SandboxError};

/// LinkedIn's largest `count`: "A 400 Bad Request response with the message, "Specified count is
/// larger than 1000" is returned if the count is greater than 1000".
pub const MAX_COUNT: usize = 1000;
/// `count` when the request names none (reference section 11: default 10).
pub const DEFAULT_COUNT: usize = 10;
/// The most objects a finder reads before paging (LinkedIn's limit of 5,000 campaigns per
/// account).
pub const MAX_SCAN: i64 = 5000;

/// One page of a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub start: usize,
    pub count: usize,
}

fn number(query: Option<&str>, name: &str) -> Result<Option<usize>, SandboxError> {
    super::query_once(query, name)?
        .map(|r| {
            r.parse::<usize>().map_err(|_| {
                SandboxError::BadRequest(format!("{name} must be a non-negative number"))
            })
        })
        .transpose()
}

impl Page {
    /// The page a query asks for; a count over [`MAX_COUNT`] is LinkedIn's 400.
    pub fn of(query: Option<&str>) -> Result<Page, SandboxError> {
        let start = number(query, "start")?.unwrap_or(0);
        let count = number(query, "count")?.unwrap_or(DEFAULT_COUNT);
        if count > MAX_COUNT {
            return Err(SandboxError::BadRequest(format!(
                "Specified count is larger than {MAX_COUNT}"
            )));
        }
        Ok(Page { start, count })
    }

    /// This page of everything found, with LinkedIn's `paging` (`total` is what was found).
    pub fn answer(&self, all: Vec<Value>) -> Answer {
        let total = all.len();
        let elements: Vec<Value> = all.into_iter().skip(self.start).take(self.count).collect();
        Answer::Body(json!({
            "elements": elements,
            "paging": {"start": self.start, "count": self.count, "total": total, "links": []},
        }))
    }
}

/// The `search=(…)` criteria of a finder, if sent.
pub fn criteria(query: Option<&str>) -> Result<Option<Restli>, SandboxError> {
    let raw = restli::raw_param(query, "search")
        .map_err(|_| SandboxError::BadRequest("search is repeated".into()))?;
    raw.map(|r| {
        let v = restli::parse(r).map_err(|e| SandboxError::BadRequest(format!("search: {e}")))?;
        match v {
            Restli::Record(_) => Ok(v),
            _ => Err(SandboxError::BadRequest(
                "search must be a record: search=(field:(values:List(…)))".into(),
            )),
        }
    })
    .transpose()
}

/// A field of a shown object as the string criteria compare with; `test` is false when unset.
fn field_text(doc: &Value, name: &str) -> Option<String> {
    match doc.get(name) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        None if name == "test" => Some("false".into()),
        _ => None,
    }
}

/// Does a shown object meet every criterion? `field:(values:List(a,b))` is one of the values;
/// `field:value` is that value. An id matches by its URN or its number.
pub fn meets(doc: &Value, criteria: &Restli) -> Result<bool, SandboxError> {
    let Restli::Record(fields) = criteria else {
        return Ok(true);
    };
    for (name, c) in fields {
        let wanted: Vec<&str> = match (c.field("values").and_then(Restli::as_list), c) {
            (Some(list), _) => list.iter().filter_map(Restli::as_str).collect(),
            (None, Restli::Str(s)) => vec![s.as_str()],
            _ => {
                return Err(SandboxError::BadRequest(format!(
                    "search criterion {name} must be (values:List(…)) or a value"
                )))
            }
        };
        let have = field_text(doc, name);
        let ok = have.as_deref().is_some_and(|h| {
            wanted
                .iter()
                .any(|w| h == *w || (name == "id" && h.rsplit(':').next() == Some(*w)))
        });
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_over_the_maximum_is_refused() {
        assert_eq!(Page::of(Some("count=1000")).unwrap().count, 1000);
        assert!(Page::of(Some("count=1001")).is_err());
        assert!(Page::of(Some("start=-1")).is_err());
        assert_eq!(
            Page::of(None).unwrap(),
            Page {
                start: 0,
                count: 10
            }
        );
    }

    #[test]
    fn criteria_match_values_ids_and_unset_test_flags() {
        let doc = json!({"id": "urn:li:sponsoredCampaign:7", "status": "DRAFT"});
        let c = |q: &str| criteria(Some(q)).unwrap().unwrap();
        assert!(meets(&doc, &c("search=(status:(values:List(ACTIVE,DRAFT)))")).unwrap());
        assert!(!meets(&doc, &c("search=(status:(values:List(ACTIVE)))")).unwrap());
        assert!(meets(&doc, &c("search=(id:(values:List(7)),test:false)")).unwrap());
        assert!(meets(
            &doc,
            &c("search=(id:(values:List(urn%3Ali%3AsponsoredCampaign%3A7)))")
        )
        .unwrap());
        assert!(!meets(&doc, &c("search=(name:(values:List(x)))")).unwrap());
        assert!(criteria(Some("search=List(a)")).is_err());
    }
}
