//! Province-level administrative division codes (GB/T 2260).
//!
//! A GB/T 2260 code has six digits: digits 1-2 name the province, 3-4 the prefecture and 5-6 the
//! county. A province-level code ends in `0000`. hcmr identifies each node, issuer (`iss`) and
//! agreement party by its province-level code; this module holds the table of all 34
//! province-level divisions and the checked [`Province`] type.

use std::fmt;
use std::str::FromStr;

/// One entry of the province table: code, Chinese name, English name, ISO 3166-2 letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProvinceInfo {
    /// The six-digit GB/T 2260 code, e.g. `510000`.
    pub code: u32,
    /// The name in Chinese, e.g. `四川省`.
    pub name_zh: &'static str,
    /// The name in English, e.g. `Sichuan`.
    pub name_en: &'static str,
    /// ISO 3166-2:CN subdivision code, e.g. `CN-SC`.
    pub iso: &'static str,
}

const fn p(
    code: u32,
    name_zh: &'static str,
    name_en: &'static str,
    iso: &'static str,
) -> ProvinceInfo {
    ProvinceInfo {
        code,
        name_zh,
        name_en,
        iso,
    }
}

/// All 34 province-level divisions of GB/T 2260, sorted by code.
pub const PROVINCES: [ProvinceInfo; 34] = [
    p(110000, "北京市", "Beijing", "CN-BJ"),
    p(120000, "天津市", "Tianjin", "CN-TJ"),
    p(130000, "河北省", "Hebei", "CN-HE"),
    p(140000, "山西省", "Shanxi", "CN-SX"),
    p(150000, "内蒙古自治区", "Inner Mongolia", "CN-NM"),
    p(210000, "辽宁省", "Liaoning", "CN-LN"),
    p(220000, "吉林省", "Jilin", "CN-JL"),
    p(230000, "黑龙江省", "Heilongjiang", "CN-HL"),
    p(310000, "上海市", "Shanghai", "CN-SH"),
    p(320000, "江苏省", "Jiangsu", "CN-JS"),
    p(330000, "浙江省", "Zhejiang", "CN-ZJ"),
    p(340000, "安徽省", "Anhui", "CN-AH"),
    p(350000, "福建省", "Fujian", "CN-FJ"),
    p(360000, "江西省", "Jiangxi", "CN-JX"),
    p(370000, "山东省", "Shandong", "CN-SD"),
    p(410000, "河南省", "Henan", "CN-HA"),
    p(420000, "湖北省", "Hubei", "CN-HB"),
    p(430000, "湖南省", "Hunan", "CN-HN"),
    p(440000, "广东省", "Guangdong", "CN-GD"),
    p(450000, "广西壮族自治区", "Guangxi", "CN-GX"),
    p(460000, "海南省", "Hainan", "CN-HI"),
    p(500000, "重庆市", "Chongqing", "CN-CQ"),
    p(510000, "四川省", "Sichuan", "CN-SC"),
    p(520000, "贵州省", "Guizhou", "CN-GZ"),
    p(530000, "云南省", "Yunnan", "CN-YN"),
    p(540000, "西藏自治区", "Xizang", "CN-XZ"),
    p(610000, "陕西省", "Shaanxi", "CN-SN"),
    p(620000, "甘肃省", "Gansu", "CN-GS"),
    p(630000, "青海省", "Qinghai", "CN-QH"),
    p(640000, "宁夏回族自治区", "Ningxia", "CN-NX"),
    p(650000, "新疆维吾尔自治区", "Xinjiang", "CN-XJ"),
    p(710000, "台湾省", "Taiwan", "CN-TW"),
    p(810000, "香港特别行政区", "Hong Kong", "CN-HK"),
    p(820000, "澳门特别行政区", "Macao", "CN-MO"),
];

/// Why a string or number is not a province-level GB/T 2260 code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvinceError {
    /// Not exactly six ASCII digits.
    #[error("{0:?} is not a GB/T 2260 code: expected six digits such as 510000")]
    NotSixDigits(String),
    /// Six digits of a known province, but a prefecture or county code (the last four digits
    /// are not `0000`); the second field is the province's code.
    #[error("{0} is a prefecture or county code; a province-level GB/T 2260 code ends in 0000 (e.g. {1})")]
    NotProvinceLevel(String, String),
    /// Six digits whose first two name no province in GB/T 2260.
    #[error(
        "{0} is not in the GB/T 2260 province table (34 codes from 110000 Beijing to 820000 Macao)"
    )]
    Unknown(String),
}

/// A province-level administrative division, checked against [`PROVINCES`].
///
/// Displays and parses as its six-digit code (`"510000"`). Only values from the table exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Province(u32);

impl Province {
    /// Looks up a six-digit numeric code.
    ///
    /// # Errors
    /// [`ProvinceError`] when the number is not one of the 34 province-level codes.
    pub fn from_code(code: u32) -> Result<Self, ProvinceError> {
        Self::from_str(&format!("{code:06}"))
    }

    /// The six-digit code as a number, e.g. `510000`.
    pub fn code(self) -> u32 {
        self.0
    }

    /// The table entry of this province.
    pub fn info(self) -> &'static ProvinceInfo {
        PROVINCES
            .iter()
            .find(|p| p.code == self.0)
            .expect("a Province is only built from a table entry")
    }

    /// The English name, e.g. `Sichuan`.
    pub fn name_en(self) -> &'static str {
        self.info().name_en
    }

    /// The Chinese name, e.g. `四川省`.
    pub fn name_zh(self) -> &'static str {
        self.info().name_zh
    }
}

impl FromStr for Province {
    type Err = ProvinceError;

    /// Strict: exactly six ASCII digits, no surrounding space (`iss` claims are parsed with it).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s;
        if t.len() != 6 || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProvinceError::NotSixDigits(s.to_string()));
        }
        let code: u32 = t
            .parse()
            .map_err(|_| ProvinceError::NotSixDigits(s.to_string()))?;
        let province = PROVINCES
            .iter()
            .find(|p| p.code == code / 10000 * 10000)
            .ok_or_else(|| ProvinceError::Unknown(t.to_string()))?;
        if code != province.code {
            return Err(ProvinceError::NotProvinceLevel(
                t.to_string(),
                province.code.to_string(),
            ));
        }
        Ok(Province(province.code))
    }
}

impl fmt::Display for Province {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:06}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_34_distinct_sorted_province_level_codes() {
        assert_eq!(PROVINCES.len(), 34);
        for w in PROVINCES.windows(2) {
            assert!(w[0].code < w[1].code, "{} before {}", w[0].code, w[1].code);
        }
        for p in PROVINCES {
            assert_eq!(p.code % 10000, 0, "{}", p.code);
            assert_eq!(Province::from_code(p.code).unwrap().code(), p.code);
        }
    }

    #[test]
    fn parses_known_codes() {
        let sc: Province = "510000".parse().unwrap();
        assert_eq!(sc.name_en(), "Sichuan");
        assert_eq!(sc.name_zh(), "四川省");
        assert_eq!(sc.to_string(), "510000");
        assert_eq!("440000".parse::<Province>().unwrap().info().iso, "CN-GD");
        assert_eq!("820000".parse::<Province>().unwrap().name_en(), "Macao");
    }

    #[test]
    fn rejects_bad_codes_with_distinct_errors() {
        assert!(matches!(
            "51000".parse::<Province>(),
            Err(ProvinceError::NotSixDigits(_))
        ));
        assert!(matches!(
            " 510000".parse::<Province>(),
            Err(ProvinceError::NotSixDigits(_))
        ));
        assert!(matches!(
            "51000a".parse::<Province>(),
            Err(ProvinceError::NotSixDigits(_))
        ));
        assert_eq!(
            "510105".parse::<Province>(),
            Err(ProvinceError::NotProvinceLevel(
                "510105".into(),
                "510000".into()
            ))
        );
        assert_eq!(
            "160000".parse::<Province>(),
            Err(ProvinceError::Unknown("160000".into()))
        );
        assert_eq!(
            Province::from_code(999_999),
            Err(ProvinceError::Unknown("999999".into()))
        );
    }
}
