//! What the sandbox accepts on the wire, written from Meta's spec and observed behaviour,
//! apart from the client's own validation: the sandbox is the oracle the client is checked
//! against, so a shared mistake must not cancel out.

/// `^v[0-9]+\.[0-9]+$` (spec: path parameter `Version`).
pub(crate) fn is_version(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('v') else {
        return false;
    };
    let Some((major, minor)) = rest.split_once('.') else {
        return false;
    };
    is_digits(major) && is_digits(minor)
}

/// `^[0-9]+$` (spec: path parameter `Phone-Number-ID`). Graph ids fit in 64 bits.
pub(crate) fn is_phone_number_id(s: &str) -> bool {
    is_digits(s) && s.len() <= 20 && s.parse::<u64>().is_ok()
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `code_method`: the spec's enum is upper case; Meta's v26 reference adds `IVR`.
pub(crate) fn is_code_method(s: &str) -> bool {
    matches!(s, "SMS" | "VOICE" | "IVR")
}

/// `language`: the spec's `^[a-z]{2}_[A-Z]{2}$`, plus the forms Meta's supported-language
/// list uses: two or three lower-case letters (`en`, `fil`), optionally followed by `_` and
/// a two-letter region (`prs_AF`).
pub(crate) fn is_language(s: &str) -> bool {
    // The forms by length: `en`, `fil`, `en_US`, `prs_AF`.
    let b = s.as_bytes();
    let lower = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_lowercase);
    let region = |at: usize| b[at] == b'_' && b[at + 1..].iter().all(u8::is_ascii_uppercase);
    match b.len() {
        2 => lower(0..2),
        3 => lower(0..3),
        5 => lower(0..2) && region(2),
        6 => lower(0..3) && region(3),
        _ => false,
    }
}

/// `^[0-9]{6}$`: a verification code or a two-step PIN.
pub(crate) fn is_six_digits(s: &str) -> bool {
    s.len() == 6 && is_digits(s)
}

/// The spec's `WhatsAppDataLocalizationRegion`.
pub(crate) const REGIONS: [&str; 14] = [
    "AE", "AU", "BH", "BR", "CA", "CH", "DE", "GB", "ID", "IN", "JP", "KR", "SG", "ZA",
];

/// A `fields` name: lower-case letters, digits and `_` (Graph's field names).
pub(crate) fn is_field_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_ids_methods_languages_codes() {
        assert!(is_version("v23.0") && is_version("v3.10"));
        for bad in ["23.0", "v23", "v23.", "v.0", "vx.0", "v23.0.1", ""] {
            assert!(!is_version(bad), "{bad}");
        }
        assert!(is_phone_number_id("1234567890"));
        for bad in ["", "12a", "-1", "99999999999999999999999"] {
            assert!(!is_phone_number_id(bad), "{bad}");
        }
        assert!(is_code_method("SMS") && is_code_method("VOICE") && is_code_method("IVR"));
        assert!(!is_code_method("sms") && !is_code_method(""));
        for ok in ["en", "en_US", "pt_BR", "fil", "prs_AF"] {
            assert!(is_language(ok), "{ok}");
        }
        for bad in ["e", "en-US", "EN", "en_us", "engl", "en_USA", "", "en_"] {
            assert!(!is_language(bad), "{bad}");
        }
        assert!(is_six_digits("012345"));
        for bad in ["12345", "1234567", "12345a", ""] {
            assert!(!is_six_digits(bad), "{bad}");
        }
    }
}
