//! Column values of either engine: what the record writer binds, built from a column list.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;

use super::{Result, Tx, on_tx};
use crate::model::{
    AccessStatus, AlertMode, Channel, Chat, DeliveryInstructions, DeliveryStatus, InboundOutcome, JobStatus,
    MessageKind, Money, OutboxStatus, Outlet, PoStatus, Role, Severity, VisualStatus,
};

/// One column's value, bound the same way on either engine.
#[derive(Debug, Clone)]
pub enum Val<'a> {
    Text(Option<Cow<'a, str>>),
    Int(Option<i64>),
    Bool(bool),
    Date(Option<NaiveDate>),
    Time(Option<DateTime<Utc>>),
}

impl<'a> From<&'a String> for Val<'a> {
    fn from(s: &'a String) -> Self {
        Val::Text(Some(Cow::Borrowed(s)))
    }
}
impl<'a> From<&'a str> for Val<'a> {
    fn from(s: &'a str) -> Self {
        Val::Text(Some(Cow::Borrowed(s)))
    }
}
impl From<String> for Val<'_> {
    fn from(s: String) -> Self {
        Val::Text(Some(Cow::Owned(s)))
    }
}
impl<'a> From<&'a Option<String>> for Val<'a> {
    fn from(s: &'a Option<String>) -> Self {
        Val::Text(s.as_deref().map(Cow::Borrowed))
    }
}
impl<'a> From<Option<&'a str>> for Val<'a> {
    fn from(s: Option<&'a str>) -> Self {
        Val::Text(s.map(Cow::Borrowed))
    }
}
/// `From` a plain value and from its `Option` (NULL when none), for the variant that holds it.
macro_rules! val_from {
    ($($t:ty => $variant:ident),+ $(,)?) => {$(
        impl From<$t> for Val<'_> {
            fn from(v: $t) -> Self {
                Val::$variant(Some(v))
            }
        }
        impl From<Option<$t>> for Val<'_> {
            fn from(v: Option<$t>) -> Self {
                Val::$variant(v)
            }
        }
        impl From<&$t> for Val<'_> {
            fn from(v: &$t) -> Self {
                Val::$variant(Some(*v))
            }
        }
        impl From<&Option<$t>> for Val<'_> {
            fn from(v: &Option<$t>) -> Self {
                Val::$variant(*v)
            }
        }
    )+};
}
val_from!(i64 => Int, NaiveDate => Date, DateTime<Utc> => Time);

impl From<Money> for Val<'_> {
    fn from(m: Money) -> Self {
        Val::Int(Some(m.0))
    }
}
impl From<Option<Money>> for Val<'_> {
    fn from(m: Option<Money>) -> Self {
        Val::from(m.map(Money::minor))
    }
}
impl From<&Money> for Val<'_> {
    fn from(m: &Money) -> Self {
        Val::from(*m)
    }
}
impl From<&Option<Money>> for Val<'_> {
    fn from(m: &Option<Money>) -> Self {
        Val::from(*m)
    }
}
impl From<bool> for Val<'_> {
    fn from(b: bool) -> Self {
        Val::Bool(b)
    }
}
impl From<&bool> for Val<'_> {
    fn from(b: &bool) -> Self {
        Val::Bool(*b)
    }
}

/// A named state kept as its name in a TEXT column, on either engine: written with `as_str`,
/// read back with `parse`, so a row carries the type and no query result is compared as a
/// string. Written by hand rather than with `#[derive(sqlx::Type)]` because the names already
/// live in `named_enum!` (one list per state) and the model layer stays free of sqlx.
macro_rules! text_column {
    ($($name:ident),+ $(,)?) => {$(
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> std::result::Result<Self, BoxDynError> {
                let text = <&str as sqlx::Decode<DB>>::decode(value)?;
                $name::parse(text).ok_or_else(|| {
                    format!("the store holds {text:?} where {} names one of {}", stringify!($name), $name::names())
                        .into()
                })
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            &'q str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> std::result::Result<IsNull, BoxDynError> {
                <&str as sqlx::Encode<DB>>::encode(self.as_str(), buf)
            }
        }
    )+};
}

text_column!(
    Role,
    Channel,
    Chat,
    AlertMode,
    JobStatus,
    DeliveryInstructions,
    DeliveryStatus,
    PoStatus,
    VisualStatus,
    Severity,
    Outlet,
    MessageKind,
    OutboxStatus,
    AccessStatus,
    InboundOutcome,
);

impl Val<'_> {
    pub fn is_null(&self) -> bool {
        match self {
            Val::Text(v) => v.is_none(),
            Val::Int(v) => v.is_none(),
            Val::Bool(_) => false,
            Val::Date(v) => v.is_none(),
            Val::Time(v) => v.is_none(),
        }
    }
}

/// A column name and its value.
pub type Col<'a> = (&'static str, Val<'a>);

/// Builds a column list: `cols![id = &self.id, qty = l.qty]`. Columns named as the fields
/// they are read from come first, each named once: `cols![self: id, qty; total = t]` is
/// `cols![id = &self.id, qty = &self.qty, total = t]`.
macro_rules! cols {
    ($rec:ident: $($field:ident),+ $(; $($name:ident = $val:expr),*)? $(,)?) => {
        vec![$((stringify!($field), Val::from(&$rec.$field)),)+ $($((stringify!($name), Val::from($val))),*)?]
    };
    ($($name:ident = $val:expr),* $(,)?) => {
        vec![$((stringify!($name), Val::from($val))),*]
    };
}

/// `$q` with each of `$vals` bound in order, by its variant.
macro_rules! bind_vals {
    ($q:expr, $vals:expr) => {{
        let mut q = $q;
        for v in $vals {
            q = match v {
                Val::Text(s) => q.bind(s.as_deref()),
                Val::Int(n) => q.bind(*n),
                Val::Bool(b) => q.bind(*b),
                Val::Date(d) => q.bind(*d),
                Val::Time(t) => q.bind(*t),
            };
        }
        q
    }};
}

/// The first column of every row one statement (with `vals` bound in order) gives, as text.
pub(super) async fn fetch_strings(tx: &mut Tx, sql: &str, vals: &[&Val<'_>]) -> Result<Vec<String>> {
    Ok(on_tx!(tx, c => bind_vals!(sqlx::query_scalar(sql), vals).fetch_all(c).await)?)
}

/// Runs one statement with `vals` bound in order; gives the rows it changed.
pub(super) async fn execute(tx: &mut Tx, sql: &str, vals: &[&Val<'_>]) -> Result<u64> {
    Ok(on_tx!(tx, c => bind_vals!(sqlx::query(sql), vals).execute(c).await.map(|r| r.rows_affected()))?)
}

pub(super) use cols;
