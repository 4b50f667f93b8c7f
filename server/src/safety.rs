//! What counts as a safety concern in a student's message: the built-in phrase lists
//! (`server/safety/phrases-*.txt`, with their sources in their headers), the categories,
//! and how a Llama Guard style safety model's answer is read. Pure functions: the check
//! that runs them beside a reply, stores flags and tells people is [`crate::alerts`].

/// What a flag is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    SelfHarm,
    Violence,
    Abuse,
}

impl Category {
    pub const ALL: [Category; 3] = [Self::SelfHarm, Self::Violence, Self::Abuse];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfHarm => "self_harm",
            Self::Violence => "violence",
            Self::Abuse => "abuse",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// For people: the email, the webhook's `category_label` and the dashboard (English).
    pub fn label(self) -> &'static str {
        match self {
            Self::SelfHarm => "self-harm or suicide",
            Self::Violence => "violence",
            Self::Abuse => "abuse",
        }
    }

    /// The same in Traditional Chinese.
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::SelfHarm => "自我傷害或自殺",
            Self::Violence => "暴力",
            Self::Abuse => "受虐",
        }
    }
}

/// Where a flag came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Phrase,
    Model,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Phrase => "phrase",
            Self::Model => "model",
        }
    }
}

/// A phrase list match: the category and the entry's id (`en:12`: language and line), so a
/// flag records why without copying the student's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhraseHit {
    pub category: Category,
    pub entry: String,
}

/// How a language's phrases are compared with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    /// Whole words: the text becomes ` word word … ` and a phrase ` its words `.
    Words,
    /// No word breaks (Chinese): spaces and punctuation are dropped on both sides.
    Compact,
}

#[derive(Debug, Clone)]
struct Phrase {
    category: Category,
    /// As compared (normalised the way the text is).
    text: String,
    entry: String,
}

#[derive(Debug, Clone)]
struct List {
    script: Script,
    phrases: Vec<Phrase>,
    /// Occurrences of these do not count as matches of a phrase inside them.
    exceptions: Vec<String>,
}

/// The built-in lists, parsed once.
#[derive(Debug, Clone)]
pub struct PhraseLists {
    lists: Vec<List>,
}

/// The lists as shipped.
pub const PHRASES_EN: &str = include_str!("../safety/phrases-en.txt");
pub const PHRASES_ZH_TW: &str = include_str!("../safety/phrases-zh-TW.txt");

impl Default for PhraseLists {
    fn default() -> Self {
        Self::builtin()
    }
}

impl PhraseLists {
    /// English and Traditional Chinese, from the repository's files.
    pub fn builtin() -> Self {
        Self {
            lists: vec![
                parse_list("en", PHRASES_EN, Script::Words),
                parse_list("zh-TW", PHRASES_ZH_TW, Script::Compact),
            ],
        }
    }

    /// How many phrases the lists hold.
    pub fn len(&self) -> usize {
        self.lists.iter().map(|l| l.phrases.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first category (self-harm first, then violence, then abuse) a phrase of any list
    /// finds in `text`.
    pub fn check(&self, text: &str) -> Option<PhraseHit> {
        let words = normalise(text, Script::Words);
        let compact = normalise(text, Script::Compact);
        let mut best: Option<&Phrase> = None;
        for list in &self.lists {
            let hay = match list.script {
                Script::Words => &words,
                Script::Compact => &compact,
            };
            for p in &list.phrases {
                if best.is_some_and(|b| b.category <= p.category) {
                    continue;
                }
                if found(hay, &p.text, &list.exceptions) {
                    best = Some(p);
                }
            }
        }
        best.map(|p| PhraseHit {
            category: p.category,
            entry: p.entry.clone(),
        })
    }
}

/// Whether `phrase` occurs in `hay` outside every occurrence of an exception.
fn found(hay: &str, phrase: &str, exceptions: &[String]) -> bool {
    hay.match_indices(phrase).any(|(at, m)| {
        let end = at + m.len();
        !exceptions.iter().any(|e| {
            e.contains(phrase)
                && hay
                    .match_indices(e.as_str())
                    .any(|(es, em)| es <= at && end <= es + em.len())
        })
    })
}

fn parse_list(lang: &str, src: &str, script: Script) -> List {
    let mut category = None;
    let mut phrases = Vec::new();
    let mut exceptions = Vec::new();
    for (n, line) in src.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            category = Category::parse(name);
            continue;
        }
        if let Some(e) = line.strip_prefix('!') {
            exceptions.push(normalise(e, script));
            continue;
        }
        let (Some(category), text) = (category, normalise(line, script)) else {
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        phrases.push(Phrase {
            category,
            text,
            entry: format!("{lang}:{}", n + 1),
        });
    }
    List {
        script,
        phrases,
        exceptions,
    }
}

/// Full-width ASCII (U+FF01–U+FF5E) and the ideographic space as their half-width forms.
fn half_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// The form a text is compared in. Words: lower-case ASCII words separated by one space,
/// with a space at each end (apostrophes dropped, so "don't" is "dont"; every other
/// character separates words). Compact: lower-case letters and digits of any script, with
/// everything else dropped.
fn normalise(text: &str, script: Script) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    match script {
        Script::Words => {
            out.push(' ');
            for c in text.chars().map(half_width) {
                if matches!(c, '\'' | '\u{2019}' | '\u{2018}' | '`') {
                    continue;
                }
                if c.is_ascii_alphanumeric() {
                    out.push(c.to_ascii_lowercase());
                } else if !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            if !out.ends_with(' ') {
                out.push(' ');
            }
        }
        Script::Compact => {
            for c in text.chars().map(half_width) {
                if c.is_alphanumeric() {
                    out.extend(c.to_lowercase());
                }
            }
        }
    }
    out
}

/// What a Llama Guard style model answered: `safe`, or `unsafe` and a line of category
/// codes (`unsafe\nS1,S11`), as docs/open-webui.md records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardVerdict {
    Safe,
    /// The codes as given (`S11`…), upper-cased.
    Unsafe(Vec<String>),
}

/// Reads a safety model's answer; `None` when it is neither form (the phrase check alone
/// then stands).
pub fn parse_guard_answer(answer: &str) -> Option<GuardVerdict> {
    let mut lines = answer
        .trim()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty());
    match lines.next()?.to_ascii_lowercase().as_str() {
        "safe" => Some(GuardVerdict::Safe),
        "unsafe" => {
            let codes = lines
                .next()
                .map(|l| {
                    l.split([',', ' '])
                        .map(|c| c.trim().to_ascii_uppercase())
                        .filter(|c| !c.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            Some(GuardVerdict::Unsafe(codes))
        }
        _ => None,
    }
}

/// The category a Llama Guard 3 hazard code stands for, for the codes classchat flags:
/// S1 violent crimes and S9 indiscriminate weapons (violence), S3 sex-related crimes and S4
/// child sexual exploitation (abuse), S11 suicide and self-harm. The other codes
/// (defamation, elections, intellectual property…) are not a child's safety and flag nothing.
pub fn guard_category(code: &str) -> Option<Category> {
    match code {
        "S11" => Some(Category::SelfHarm),
        "S1" | "S9" => Some(Category::Violence),
        "S3" | "S4" => Some(Category::Abuse),
        _ => None,
    }
}

/// The most serious category among `codes` (self-harm first), if any flags.
pub fn guard_flag(codes: &[String]) -> Option<Category> {
    codes.iter().filter_map(|c| guard_category(c)).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(text: &str) -> Option<&'static str> {
        PhraseLists::builtin()
            .check(text)
            .map(|h| h.category.as_str())
    }

    #[test]
    fn the_lists_parse_with_every_category_in_both_languages() {
        let l = PhraseLists::builtin();
        assert!(l.len() > 100, "{}", l.len());
        for list in &l.lists {
            for c in Category::ALL {
                assert!(list.phrases.iter().any(|p| p.category == c), "{c:?}");
            }
        }
    }

    #[test]
    fn english_phrases_match_whatever_the_case_width_and_punctuation() {
        assert_eq!(cat("I want to KILL MYSELF."), Some("self_harm"));
        assert_eq!(cat("sometimes i...kill-myself?? no"), Some("self_harm"));
        assert_eq!(cat("ｉ　ｗａｎｔ　ｔｏ　ｄｉｅ"), Some("self_harm"));
        assert_eq!(cat("I don’t want to live anymore"), Some("self_harm"));
        assert_eq!(cat("I'm thinking about suicide"), Some("self_harm"));
        assert_eq!(
            cat("he said he will bring a gun to school"),
            Some("violence")
        );
        assert_eq!(cat("my dad hits me when he drinks"), Some("abuse"));
        // Self-harm outranks the others when several match.
        assert_eq!(cat("my dad hits me and I want to die"), Some("self_harm"));
    }

    #[test]
    fn english_phrases_never_match_inside_other_words_or_harmless_idioms() {
        for fine in [
            "This is a killer app for note taking",
            "Let's shoot a photo of the experiment",
            "How do I skill myself up in algebra?",
            "Explain the Suicide Squad movie plot", // an exception
            "I nearly died laughing at that joke",
            "The story really touched me",
            "Beats me, what is the answer?",
            "It hits me that photosynthesis needs light",
            "We are going to kill it at the science fair",
            "Time to kill the process with kill -9",
            "The hunter shot the deer in the story",
            "Please overdo the decorations",
        ] {
            assert_eq!(cat(fine), None, "{fine:?}");
        }
    }

    #[test]
    fn chinese_phrases_match_across_spaces_punctuation_and_full_width_forms() {
        assert_eq!(cat("我想死"), Some("self_harm"));
        assert_eq!(cat("我 想，死……"), Some("self_harm"));
        assert_eq!(cat("最近一直想自殺"), Some("self_harm"));
        assert_eq!(cat("他說要帶刀去學校"), Some("violence"));
        assert_eq!(cat("爸爸打我，我很怕"), Some("abuse"));
        assert_eq!(cat("Teacher, 我不想活了"), Some("self_harm"));
    }

    #[test]
    fn chinese_hyperbole_and_idioms_are_not_flagged() {
        for fine in [
            "笑死我了",
            "今天熱到想死",
            "百貨公司跳樓大拍賣",
            "這是跳樓價",
            "我要殺價",
            "我要殺時間",
            "他打我電話三次",
            "殺手級應用程式",
            "這題打死他也不會",
        ] {
            assert_eq!(cat(fine), None, "{fine:?}");
        }
    }

    #[test]
    fn a_hit_names_the_list_entry_not_the_message() {
        let hit = PhraseLists::builtin()
            .check("please, i want to die")
            .unwrap();
        assert!(hit.entry.starts_with("en:"), "{}", hit.entry);
        let line: usize = hit.entry[3..].parse().unwrap();
        assert_eq!(PHRASES_EN.lines().nth(line - 1), Some("want to die"));
        let hit = PhraseLists::builtin().check("我想死").unwrap();
        assert!(hit.entry.starts_with("zh-TW:"), "{}", hit.entry);
    }

    #[test]
    fn guard_answers_are_read_into_categories() {
        assert_eq!(parse_guard_answer("safe"), Some(GuardVerdict::Safe));
        assert_eq!(parse_guard_answer("\n\nsafe\n"), Some(GuardVerdict::Safe));
        let v = parse_guard_answer("unsafe\nS1,S11").unwrap();
        assert_eq!(v, GuardVerdict::Unsafe(vec!["S1".into(), "S11".into()]));
        let GuardVerdict::Unsafe(codes) = v else {
            unreachable!()
        };
        assert_eq!(guard_flag(&codes), Some(Category::SelfHarm));
        assert_eq!(
            parse_guard_answer("Unsafe\ns4"),
            Some(GuardVerdict::Unsafe(vec!["S4".into()]))
        );
        assert_eq!(guard_flag(&["S4".into()]), Some(Category::Abuse));
        assert_eq!(guard_flag(&["S5".into(), "S13".into()]), None);
        assert_eq!(
            parse_guard_answer("unsafe"),
            Some(GuardVerdict::Unsafe(vec![]))
        );
        assert_eq!(parse_guard_answer("I cannot help with that."), None);
        assert_eq!(parse_guard_answer(""), None);
    }
}
