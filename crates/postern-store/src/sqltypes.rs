//! How domain types cross the driver: enums as text (declared with `postern_vocab::named_enum!`,
//! which writes their `Decode`/`Type`), timestamps as `i64`.
//!
//! The `Decode`/`Type` impls are generic over the database, so one `#[derive(sqlx::FromRow)]`
//! works on both backends. Values are bound explicitly (`.as_str()`, `.0`), so no `Encode` impls
//! are needed.

use crate::Timestamp;

/// The backend-generic `sqlx::Type` of a value stored as an `i64` column ([`Timestamp`],
/// `Role` as its access level); each writes its own `Decode`.
macro_rules! stored_as_i64 {
    ($name:ty) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            i64: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <i64 as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <i64 as sqlx::Type<DB>>::compatible(ty)
            }
        }
    };
}

pub(crate) use stored_as_i64;

stored_as_i64!(Timestamp);

impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for Timestamp
where
    i64: sqlx::Decode<'r, DB>,
{
    fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(Timestamp(<i64 as sqlx::Decode<'r, DB>>::decode(value)?))
    }
}
