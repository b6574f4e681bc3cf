//! Validated text types as TEXT columns (of either store). A value is written as its
//! text and read back through its own parser, so a row that does not pass
//! (edited by hand, or written before a rule was tightened) is a decode
//! error of the store, never an unchecked string handed on.

/// `stored_as_text!(Type, parser)`: `parser` takes `&str` and returns
/// `Result<Type, String>`; `Type` has `as_str`.
/// Also lets the type be compared with a plain `&str`.
/// `stored_as_text!(@column Type, parser, |value| text)` is the column part
/// alone, for a type that is written as some other text of itself.
macro_rules! stored_as_text {
    ($type:ty, $parse:expr) => {
        $crate::domain::text_column::stored_as_text!(@column $type, $parse, |value| value.as_str().to_owned());

        impl PartialEq<&str> for $type {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
    (@column $type:ty, $parse:expr, |$value:ident| $text:expr) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $type
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

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $type
        where
            String: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                let $value = self;
                <String as sqlx::Encode<DB>>::encode($text, buf)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $type
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<DB>>::decode(value)?;
                Ok($parse(text)?)
            }
        }
    };
}

pub(crate) use stored_as_text;

#[cfg(test)]
mod tests {
    use crate::domain::{GitRef, Login, RepoSpec, UrlPath};

    /// What is stored is read back through the parser: it must give the
    /// same value again, or a record would change (or fail) on its way back.
    #[test]
    fn a_stored_value_parses_back_to_itself() {
        for raw in [
            "https://GitHub.com/a/b",
            "https://example.org:8443/group/sub/project.git",
            "https://example.org/a%27%3B%24%28reboot%29",
            " https://gitlab.com/x/y/ ",
        ] {
            let repo = RepoSpec::parse(raw).unwrap();
            assert_eq!(RepoSpec::parse(repo.as_str()).unwrap(), repo, "{raw:?}");
        }
        for raw in ["", " main ", "v1.2+3"] {
            let git_ref = GitRef::parse(raw).unwrap();
            assert_eq!(GitRef::parse(git_ref.as_str()).unwrap(), git_ref, "{raw:?}");
        }
        for raw in ["", "/lab/tree/a.ipynb", "voila/render/x%20y.ipynb"] {
            let path = UrlPath::parse(raw).unwrap();
            assert_eq!(UrlPath::parse(path.as_str()).unwrap(), path, "{raw:?}");
        }
        for raw in [" Octo-cat ", "renamed-42"] {
            let login = Login::parse(raw).unwrap();
            assert_eq!(Login::parse(login.as_str()).unwrap(), login, "{raw:?}");
            assert_eq!(login, login.as_str(), "compares with its text");
        }
    }
}
