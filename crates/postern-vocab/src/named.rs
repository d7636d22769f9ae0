//! Enums named by snake_case text ([`named_enum!`](crate::named_enum)), the one way postern
//! declares a value that is stored, printed and parsed by name: the shared outcome words here,
//! and the store's own states and kinds.

use std::fmt;

/// A name that is none of an enum's variants (a value read from outside, or stored by a newer
/// version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// Which enum.
    pub of: &'static str,
    /// The name, cut to 64 bytes.
    pub name: String,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.of, self.name)
    }
}

impl std::error::Error for UnknownName {}

/// Declares a fieldless enum named by snake_case text: serde names, `as_str`, `FromStr`,
/// `Display`, and (feature `sqlx`) a backend-generic `sqlx::Decode` from text. Values are bound
/// as `.as_str()`, so no `Encode` is needed.
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $text)] $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The snake_case name used in the store, JSON, logs and metric labels.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::named::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err($crate::named::UnknownName {
                        of: stringify!($name),
                        name: s.chars().take(64).collect(),
                    }),
                }
            }
        }

        $crate::named_enum_sqlx!($name);
    };
}

/// The backend-generic `sqlx::Type` and `sqlx::Decode` (from text) of a [`named_enum!`]; empty
/// without the `sqlx` feature. Declared here rather than behind a `cfg` inside `named_enum!`,
/// whose expansion is compiled in the calling crate, where this crate's features are unknown.
#[cfg(feature = "sqlx")]
#[doc(hidden)]
#[macro_export]
macro_rules! named_enum_sqlx {
    ($name:ident) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            String: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            String: sqlx::Decode<'r, DB>,
        {
            fn decode(value: DB::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <String as sqlx::Decode<'r, DB>>::decode(value)?;
                Ok(text.parse::<$name>()?)
            }
        }
    };
}

/// See the `sqlx` variant.
#[cfg(not(feature = "sqlx"))]
#[doc(hidden)]
#[macro_export]
macro_rules! named_enum_sqlx {
    ($name:ident) => {};
}
