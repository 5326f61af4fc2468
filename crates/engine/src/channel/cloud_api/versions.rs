//! When each Graph API version stops working, so that a relay still configured with an old
//! `WHATSAPP_API_VERSION` says so at start-up instead of failing every send on the day Meta
//! retires it.

use chrono::NaiveDate;

/// The default `WHATSAPP_API_VERSION` (settings table); the newest one the relay was tested
/// against, with the longest life left of those Meta had dated.
pub const RECOMMENDED: &str = "v25.0";

/// Meta's published end dates (developers.facebook.com, Graph API changelog, as of 2026-12).
const ENDS: [(&str, (i32, u32, u32)); 5] = [
    ("v21.0", (2027, 1, 21)),
    ("v22.0", (2027, 5, 20)),
    ("v23.0", (2027, 10, 8)),
    ("v24.0", (2028, 2, 18)),
    ("v25.0", (2028, 7, 29)),
];

/// How long before its end a version is worth a warning: time to change one setting.
const WARN_DAYS: i64 = 90;

/// What to tell staff about `version` on `today`: nothing for a version with time left or one
/// whose end is not known here.
pub fn warning(version: &str, today: NaiveDate) -> Option<String> {
    let version = version.trim_matches('/');
    let (_, (y, m, d)) = ENDS.iter().find(|(v, _)| *v == version)?;
    let ends = NaiveDate::from_ymd_opt(*y, *m, *d)?;
    let left = (ends - today).num_days();
    let date = ends.format("%d/%m/%Y");
    if left <= 0 {
        Some(format!(
            "WHATSAPP_API_VERSION={version} ne fonctionne plus depuis le {date} : Meta refuse ses \
             requêtes ; passez à {RECOMMENDED} (Paramètres ou fichier de configuration)"
        ))
    } else if left <= WARN_DAYS {
        Some(format!(
            "WHATSAPP_API_VERSION={version} cessera de fonctionner le {date} (dans {left} jours) : \
             passez à {RECOMMENDED} avant (Paramètres ou fichier de configuration)"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    #[test]
    fn an_old_version_is_named_with_its_end_and_what_to_set_instead() {
        let soon = warning("v21.0", day(2026, 12, 3)).expect("v21 ends in 49 days");
        assert!(
            soon.contains("21/01/2027") && soon.contains("49 jours"),
            "{soon}"
        );
        assert!(soon.contains(RECOMMENDED), "{soon}");
        let over = warning("/v21.0/", day(2027, 1, 21)).expect("v21 is over");
        assert!(over.contains("ne fonctionne plus"), "{over}");
    }

    #[test]
    fn a_version_with_time_left_or_unknown_here_says_nothing() {
        assert_eq!(warning(RECOMMENDED, day(2026, 12, 3)), None);
        assert_eq!(warning("v22.0", day(2026, 12, 3)), None);
        assert_eq!(warning("v26.0", day(2026, 12, 3)), None);
    }

    #[test]
    fn the_default_version_is_the_recommended_one() {
        let default = crate::config::table::SETTINGS
            .iter()
            .find(|s| s.key == "WHATSAPP_API_VERSION")
            .map(|s| s.default);
        assert_eq!(
            default,
            Some(crate::config::table::SettingDefault::Value(RECOMMENDED))
        );
    }
}
