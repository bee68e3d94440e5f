//! Backend-neutral SQL values and rows, so each query is written once for both backends.

use std::sync::Arc;

use crate::StoreError;

/// A parameter or column value. scopegate's schema uses only integers and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
// Typed ids are stored as their plain text or integer.
impl From<&scopegate_core::ClientId> for Value {
    fn from(v: &scopegate_core::ClientId) -> Self {
        Value::Text(v.as_str().to_string())
    }
}
impl From<scopegate_core::ClientId> for Value {
    fn from(v: scopegate_core::ClientId) -> Self {
        Value::Text(v.into_string())
    }
}
impl From<&scopegate_core::MemberId> for Value {
    fn from(v: &scopegate_core::MemberId) -> Self {
        Value::Text(v.as_str().to_string())
    }
}
impl From<scopegate_core::MemberId> for Value {
    fn from(v: scopegate_core::MemberId) -> Self {
        Value::Text(v.into_string())
    }
}
impl From<scopegate_core::GrantId> for Value {
    fn from(v: scopegate_core::GrantId) -> Self {
        Value::Int(v.get())
    }
}
impl From<&scopegate_core::SecretHash> for Value {
    fn from(v: &scopegate_core::SecretHash) -> Self {
        Value::Text(v.as_str().to_string())
    }
}
impl From<scopegate_core::SecretHash> for Value {
    fn from(v: scopegate_core::SecretHash) -> Self {
        Value::Text(v.as_str().to_string())
    }
}
/// Scopes are stored comma-separated (LinkedIn's wire form).
impl From<&scopegate_core::ScopeSet> for Value {
    fn from(v: &scopegate_core::ScopeSet) -> Self {
        Value::Text(v.to_comma_separated())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Names a column of a [`Row`]: by its name (what record mappers use, so a mapper does not
/// depend on the order of a column list) or by position (for one-column aggregates).
pub trait Col: Copy + std::fmt::Display {
    /// The column's position in `row`, if it has one.
    fn index(self, row: &Row) -> Option<usize>;
}

impl Col for usize {
    fn index(self, row: &Row) -> Option<usize> {
        (self < row.values.len()).then_some(self)
    }
}

impl Col for &str {
    fn index(self, row: &Row) -> Option<usize> {
        row.names.iter().position(|n| n == self)
    }
}

/// One result row: its values and the names the backend reported for its columns.
#[derive(Debug, Clone)]
pub struct Row {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// A row from a backend; `names` is shared by every row of one result.
    pub(crate) fn new(names: Arc<[String]>, values: Vec<Value>) -> Self {
        Row { names, values }
    }
    fn at(&self, c: impl Col) -> Result<&Value, StoreError> {
        c.index(self)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| StoreError::Backend(format!("no column {c} in the result")))
    }
    /// An integer column.
    pub fn int(&self, c: impl Col) -> Result<i64, StoreError> {
        match self.at(c)? {
            Value::Int(v) => Ok(*v),
            other => Err(StoreError::Backend(format!(
                "column {c}: expected integer, got {other:?}"
            ))),
        }
    }
    /// A nullable integer column.
    pub fn opt_int(&self, c: impl Col) -> Result<Option<i64>, StoreError> {
        match self.at(c)? {
            Value::Null => Ok(None),
            _ => self.int(c).map(Some),
        }
    }
    /// An integer column holding 0 or 1.
    pub fn bool(&self, c: impl Col) -> Result<bool, StoreError> {
        Ok(self.int(c)? != 0)
    }
    /// A text column.
    pub fn text(&self, c: impl Col) -> Result<String, StoreError> {
        match self.at(c)? {
            Value::Text(v) => Ok(v.clone()),
            other => Err(StoreError::Backend(format!(
                "column {c}: expected text, got {other:?}"
            ))),
        }
    }
    /// A nullable text column.
    /// A stored keyed hash (of a token, a code, a session).
    pub fn hash(&self, c: impl Col) -> Result<scopegate_core::SecretHash, StoreError> {
        self.text(c).map(scopegate_core::SecretHash::from_stored)
    }
    pub fn opt_hash(&self, c: impl Col) -> Result<Option<scopegate_core::SecretHash>, StoreError> {
        Ok(self
            .opt_text(c)?
            .map(scopegate_core::SecretHash::from_stored))
    }
    /// A stored scope list. One that does not parse is a broken record, never an empty set.
    pub fn scopes(&self, c: impl Col) -> Result<scopegate_core::ScopeSet, StoreError> {
        scopegate_core::ScopeSet::parse(&self.text(c)?)
            .map_err(|e| StoreError::Backend(format!("column {c}: {e}")))
    }
    pub fn opt_text(&self, c: impl Col) -> Result<Option<String>, StoreError> {
        match self.at(c)? {
            Value::Null => Ok(None),
            _ => self.text(c).map(Some),
        }
    }
}

/// A stored value the code does not know (a token kind, an access level…): the row is refused,
/// never read as some default, so a corrupt or newer row cannot widen what a token may do.
pub fn unknown(what: &str, stored: &str) -> StoreError {
    StoreError::Backend(format!("unknown stored {what} {stored:?}"))
}

/// Builds a parameter list: `params![a, b, c]`.
#[macro_export]
macro_rules! params {
    () => { &[] as &[$crate::Value] };
    ($($v:expr),+ $(,)?) => { &[$($crate::Value::from($v)),+] };
}
