//! Validated text types as SQLite TEXT columns. A value is written as its
//! text and read back through its own parser, so a row that does not pass
//! (edited by hand, or written before a rule was tightened) is a decode
//! error of the store, never an unchecked string handed on.

/// `stored_as_text!(Type, parser)`: `parser` takes `&str` and returns
/// `Result<Type, String>`; `Type` has `as_str`.
/// Also lets the type be compared with a plain `&str`.
macro_rules! stored_as_text {
    ($type:ty, $parse:expr) => {
        impl sqlx::Type<sqlx::Sqlite> for $type {
            fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
                <String as sqlx::Type<sqlx::Sqlite>>::type_info()
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Sqlite> for $type {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Sqlite as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <String as sqlx::Encode<sqlx::Sqlite>>::encode(self.as_str().to_owned(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Sqlite> for $type {
            fn decode(
                value: sqlx::sqlite::SqliteValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<sqlx::Sqlite>>::decode(value)?;
                Ok($parse(text)?)
            }
        }

        impl PartialEq<&str> for $type {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

pub(crate) use stored_as_text;
