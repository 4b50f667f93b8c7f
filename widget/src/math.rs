//! LaTeX math (the subset tutors write) to a MathML tree, which browsers draw natively.
//!
//! Hand-written because of size: the `latex2mathml` crate (0.2.3), built into the widget,
//! added 12,470 B brotli to the on-open download (143,175 → 155,645 B, over the 153,600 B
//! cap on its own) and returns an HTML string, which the widget never injects. This
//! converter covers what tutoring replies use: fractions, roots, nested scripts, Greek,
//! operators and relations, functions, `\left…\right`, `\text`, font commands, accents,
//! matrices, `cases` and `aligned`. Anything else (an unknown command, unbalanced braces,
//! nesting past [`MAX_DEPTH`]) makes [`to_mathml`] return `None`, and the caller shows
//! the source: never half an expression.

use std::fmt;

/// How deep groups and commands may nest. A hostile `{{{{…` 10,000 deep would otherwise
/// overflow the stack; real formulas stay far below this.
pub const MAX_DEPTH: usize = 32;

/// A MathML element: a leaf (`mi`, `mn`, `mo`, `mtext`) has `text`, others `kids`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub tag: &'static str,
    pub attrs: Vec<(&'static str, &'static str)>,
    pub text: String,
    pub kids: Vec<Node>,
}

impl Node {
    fn leaf(tag: &'static str, text: impl Into<String>) -> Self {
        Self {
            tag,
            attrs: Vec::new(),
            text: text.into(),
            kids: Vec::new(),
        }
    }

    fn el(tag: &'static str, kids: Vec<Node>) -> Self {
        Self {
            tag,
            attrs: Vec::new(),
            text: String::new(),
            kids,
        }
    }

    fn attr(mut self, k: &'static str, v: &'static str) -> Self {
        self.attrs.push((k, v));
        self
    }
}

/// Serialized as MathML markup, for the tests (the widget builds DOM nodes instead).
impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}", self.tag)?;
        for (k, v) in &self.attrs {
            write!(f, " {k}=\"{v}\"")?;
        }
        f.write_str(">")?;
        for c in self.text.chars() {
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                _ => write!(f, "{c}")?,
            }
        }
        for k in &self.kids {
            write!(f, "{k}")?;
        }
        write!(f, "</{}>", self.tag)
    }
}

/// Converts `tex` (without its `$` delimiters) to a `<math>` tree, or `None` when any
/// part of it is outside the supported subset.
pub fn to_mathml(tex: &str, display: bool) -> Option<Node> {
    let s: Vec<char> = tex.chars().collect();
    let mut p = Parser {
        s: &s,
        i: 0,
        depth: 0,
    };
    let rows = p.table().ok()?;
    if p.i < s.len() {
        return None; // a stray `}`, `\right` or `\end`
    }
    let kids = if rows.len() == 1 && rows[0].len() == 1 {
        rows.into_iter().flatten().flatten().collect()
    } else {
        // `\\` (and `&`) outside an environment: lines as in `gathered` / `aligned`.
        let aligned = rows.iter().any(|r| r.len() > 1);
        vec![mtable(rows, aligned.then_some("right left"))]
    };
    let mut math = Node::el("math", kids);
    if display {
        math = math.attr("display", "block");
    }
    Some(math)
}

/// Marks an unsupported construct; the whole expression then falls back to its source.
struct Unsupported;

type Res<T> = Result<T, Unsupported>;

/// Rows of cells, each cell a list of nodes.
type Rows = Vec<Vec<Vec<Node>>>;

struct Parser<'a> {
    s: &'a [char],
    i: usize,
    depth: usize,
}

const GREEK: &[(&str, char)] = &[
    ("alpha", 'α'),
    ("beta", 'β'),
    ("gamma", 'γ'),
    ("delta", 'δ'),
    ("epsilon", 'ϵ'),
    ("varepsilon", 'ε'),
    ("zeta", 'ζ'),
    ("eta", 'η'),
    ("theta", 'θ'),
    ("vartheta", 'ϑ'),
    ("iota", 'ι'),
    ("kappa", 'κ'),
    ("lambda", 'λ'),
    ("mu", 'μ'),
    ("nu", 'ν'),
    ("xi", 'ξ'),
    ("omicron", 'ο'),
    ("pi", 'π'),
    ("varpi", 'ϖ'),
    ("rho", 'ρ'),
    ("varrho", 'ϱ'),
    ("sigma", 'σ'),
    ("varsigma", 'ς'),
    ("tau", 'τ'),
    ("upsilon", 'υ'),
    ("phi", 'ϕ'),
    ("varphi", 'φ'),
    ("chi", 'χ'),
    ("psi", 'ψ'),
    ("omega", 'ω'),
    ("infty", '∞'),
    ("partial", '∂'),
    ("nabla", '∇'),
    ("emptyset", '∅'),
    ("varnothing", '∅'),
    ("hbar", 'ℏ'),
    ("ell", 'ℓ'),
    ("aleph", 'ℵ'),
    ("Re", 'ℜ'),
    ("Im", 'ℑ'),
];

/// Upright identifiers (capital Greek is upright in TeX).
const UPRIGHT: &[(&str, char)] = &[
    ("Gamma", 'Γ'),
    ("Delta", 'Δ'),
    ("Theta", 'Θ'),
    ("Lambda", 'Λ'),
    ("Xi", 'Ξ'),
    ("Pi", 'Π'),
    ("Sigma", 'Σ'),
    ("Upsilon", 'Υ'),
    ("Phi", 'Φ'),
    ("Psi", 'Ψ'),
    ("Omega", 'Ω'),
];

const OPS: &[(&str, char)] = &[
    ("cdot", '⋅'),
    ("times", '×'),
    ("div", '÷'),
    ("pm", '±'),
    ("mp", '∓'),
    ("le", '≤'),
    ("leq", '≤'),
    ("ge", '≥'),
    ("geq", '≥'),
    ("ne", '≠'),
    ("neq", '≠'),
    ("approx", '≈'),
    ("equiv", '≡'),
    ("sim", '∼'),
    ("simeq", '≃'),
    ("cong", '≅'),
    ("propto", '∝'),
    ("ll", '≪'),
    ("gg", '≫'),
    ("to", '→'),
    ("rightarrow", '→'),
    ("leftarrow", '←'),
    ("gets", '←'),
    ("Rightarrow", '⇒'),
    ("Leftarrow", '⇐'),
    ("leftrightarrow", '↔'),
    ("Leftrightarrow", '⇔'),
    ("implies", '⟹'),
    ("iff", '⟺'),
    ("mapsto", '↦'),
    ("uparrow", '↑'),
    ("downarrow", '↓'),
    ("rightleftharpoons", '⇌'),
    ("in", '∈'),
    ("notin", '∉'),
    ("ni", '∋'),
    ("subset", '⊂'),
    ("subseteq", '⊆'),
    ("supset", '⊃'),
    ("supseteq", '⊇'),
    ("cup", '∪'),
    ("cap", '∩'),
    ("setminus", '∖'),
    ("forall", '∀'),
    ("exists", '∃'),
    ("neg", '¬'),
    ("lnot", '¬'),
    ("land", '∧'),
    ("wedge", '∧'),
    ("lor", '∨'),
    ("vee", '∨'),
    ("ldots", '…'),
    ("dots", '…'),
    ("cdots", '⋯'),
    ("vdots", '⋮'),
    ("ddots", '⋱'),
    ("degree", '°'),
    ("circ", '∘'),
    ("ast", '∗'),
    ("star", '⋆'),
    ("bullet", '∙'),
    ("oplus", '⊕'),
    ("otimes", '⊗'),
    ("perp", '⊥'),
    ("parallel", '∥'),
    ("mid", '∣'),
    ("angle", '∠'),
    ("triangle", '△'),
    ("therefore", '∴'),
    ("because", '∵'),
    ("prime", '′'),
    ("colon", ':'),
    ("langle", '⟨'),
    ("rangle", '⟩'),
    ("lfloor", '⌊'),
    ("rfloor", '⌋'),
    ("lceil", '⌈'),
    ("rceil", '⌉'),
    ("vert", '|'),
    ("lvert", '|'),
    ("rvert", '|'),
    ("Vert", '‖'),
    ("lVert", '‖'),
    ("rVert", '‖'),
    ("lbrace", '{'),
    ("rbrace", '}'),
    ("int", '∫'),
    ("iint", '∬'),
    ("iiint", '∭'),
    ("oint", '∮'),
    ("{", '{'),
    ("}", '}'),
    ("|", '‖'),
    ("%", '%'),
    ("$", '$'),
    ("&", '&'),
    ("#", '#'),
    ("_", '_'),
];

/// Big operators whose scripts go under and over them in display style.
const BIG_OPS: &[(&str, char)] = &[
    ("sum", '∑'),
    ("prod", '∏'),
    ("coprod", '∐'),
    ("bigcup", '⋃'),
    ("bigcap", '⋂'),
];

/// Function names, upright; the `true` ones take limits under them (`\lim_{x\to 0}`).
const FUNCTIONS: &[(&str, bool)] = &[
    ("sin", false),
    ("cos", false),
    ("tan", false),
    ("sec", false),
    ("csc", false),
    ("cot", false),
    ("arcsin", false),
    ("arccos", false),
    ("arctan", false),
    ("sinh", false),
    ("cosh", false),
    ("tanh", false),
    ("log", false),
    ("ln", false),
    ("lg", false),
    ("exp", false),
    ("det", false),
    ("dim", false),
    ("ker", false),
    ("deg", false),
    ("arg", false),
    ("gcd", false),
    ("lcm", false),
    ("mod", false),
    ("bmod", false),
    ("lim", true),
    ("max", true),
    ("min", true),
    ("sup", true),
    ("inf", true),
];

/// Accents: command, mark, whether it goes under.
const ACCENTS: &[(&str, char, bool)] = &[
    ("hat", '^', false),
    ("widehat", '^', false),
    ("bar", '¯', false),
    ("overline", '‾', false),
    ("vec", '→', false),
    ("overrightarrow", '→', false),
    ("dot", '˙', false),
    ("ddot", '¨', false),
    ("tilde", '˜', false),
    ("widetilde", '˜', false),
    ("underline", '_', true),
];

/// Spacing commands and their widths.
const SPACES: &[(&str, &str)] = &[
    (",", "0.1667em"),
    (":", "0.2222em"),
    (">", "0.2222em"),
    (";", "0.2778em"),
    (" ", "0.25em"),
    ("enspace", "0.5em"),
    ("quad", "1em"),
    ("qquad", "2em"),
];

/// Commands that change nothing this renderer draws.
const IGNORED: &[&str] = &[
    "displaystyle",
    "textstyle",
    "!",
    "big",
    "Big",
    "bigg",
    "Bigg",
    "bigl",
    "bigr",
    "Bigl",
    "Bigr",
    "biggl",
    "biggr",
    "Biggl",
    "Biggr",
];

fn find<T: Copy>(table: &[(&str, T)], name: &str) -> Option<T> {
    table.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

fn mo(c: char) -> Node {
    Node::leaf("mo", c)
}

fn mrow_or_single(mut kids: Vec<Node>) -> Node {
    if kids.len() == 1 {
        kids.remove(0)
    } else {
        Node::el("mrow", kids)
    }
}

fn mtable(rows: Rows, align: Option<&'static str>) -> Node {
    let rows = rows
        .into_iter()
        .map(|r| Node::el("mtr", r.into_iter().map(|c| Node::el("mtd", c)).collect()))
        .collect();
    let t = Node::el("mtable", rows);
    match align {
        Some(a) => t.attr("columnalign", a),
        None => t,
    }
}

/// Maps letters and digits to a Unicode math alphabet (MathML Core draws no `mathvariant`
/// but `normal`): `bold`, `double-struck` or `script`.
fn styled(c: char, style: &str) -> char {
    let (upper, lower, digit, holes): (u32, u32, u32, &[(char, char)]) = match style {
        "bold" => (0x1D400, 0x1D41A, 0x1D7CE, &[]),
        "double-struck" => (
            0x1D538,
            0x1D552,
            0x1D7D8,
            &[
                ('C', 'ℂ'),
                ('H', 'ℍ'),
                ('N', 'ℕ'),
                ('P', 'ℙ'),
                ('Q', 'ℚ'),
                ('R', 'ℝ'),
                ('Z', 'ℤ'),
            ],
        ),
        _ => (
            0x1D49C,
            0,
            0,
            &[
                ('B', 'ℬ'),
                ('E', 'ℰ'),
                ('F', 'ℱ'),
                ('H', 'ℋ'),
                ('I', 'ℐ'),
                ('L', 'ℒ'),
                ('M', 'ℳ'),
                ('R', 'ℛ'),
            ],
        ),
    };
    if let Some(&(_, h)) = holes.iter().find(|(k, _)| *k == c) {
        return h;
    }
    let base = match c {
        'A'..='Z' => upper + (c as u32 - 'A' as u32),
        'a'..='z' if lower > 0 => lower + (c as u32 - 'a' as u32),
        '0'..='9' if digit > 0 => digit + (c as u32 - '0' as u32),
        _ => return c,
    };
    char::from_u32(base).unwrap_or(c)
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }

    /// The command name at `self.i` (just after a `\`), without consuming it.
    fn name_at(&self, at: usize) -> (String, usize) {
        let rest = &self.s[at.min(self.s.len())..];
        let n = rest.iter().take_while(|c| c.is_ascii_alphabetic()).count();
        let n = if n == 0 { rest.len().min(1) } else { n };
        (rest[..n].iter().collect(), n)
    }

    /// The command at `self.i`, if there is one, without consuming it.
    fn peek_cmd(&self) -> Option<String> {
        (self.peek() == Some('\\')).then(|| self.name_at(self.i + 1).0)
    }

    fn expect(&mut self, c: char) -> Res<()> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Unsupported)
        }
    }

    /// The text of a `{…}` group, braces balanced, taken literally.
    fn raw_group(&mut self) -> Res<String> {
        self.expect('{')?;
        let start = self.i;
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                '\\' => self.i += 1,
                '{' => depth += 1,
                '}' if depth == 0 => return Ok(self.s[start..self.i - 1].iter().collect()),
                '}' => depth -= 1,
                _ => {}
            }
        }
        Err(Unsupported)
    }

    /// Cells separated by `&` and rows by `\\`, up to `}`, `\end`, `\right` or the end.
    fn table(&mut self) -> Res<Rows> {
        let mut rows = vec![vec![]];
        loop {
            let cell = self.seq(false)?;
            if let Some(row) = rows.last_mut() {
                row.push(cell);
            }
            if self.peek() == Some('&') {
                self.i += 1;
            } else if self.peek_cmd().as_deref() == Some("\\") {
                self.i += 2;
                // `\\[4pt]`: extra spacing, not drawn.
                self.skip_ws();
                if self.peek() == Some('[') {
                    while self.peek().is_some_and(|c| c != ']') {
                        self.i += 1;
                    }
                    self.expect(']')?;
                }
                rows.push(vec![]);
            } else {
                break;
            }
        }
        // A trailing `\\` leaves an empty last row.
        if rows.len() > 1 && rows.last().is_some_and(|r| r.len() == 1 && r[0].is_empty()) {
            rows.pop();
        }
        Ok(rows)
    }

    /// Atoms with their scripts, up to a closer; `in_opt` also stops at `]`.
    fn seq(&mut self, in_opt: bool) -> Res<Vec<Node>> {
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                None | Some('}' | '&') => break,
                Some(']') if in_opt => break,
                Some('\\') => {
                    let (name, n) = self.name_at(self.i + 1);
                    if matches!(name.as_str(), "\\" | "end" | "right") {
                        break;
                    }
                    if IGNORED.contains(&name.as_str()) {
                        self.i += 1 + n;
                        continue;
                    }
                }
                _ => {}
            }
            let (base, limits) = self.atom()?;
            out.push(self.scripts(base, limits)?);
        }
        Ok(out)
    }

    /// Attaches any `^` and `_` after `base`.
    fn scripts(&mut self, base: Node, limits: bool) -> Res<Node> {
        let (mut sub, mut sup) = (None, None);
        loop {
            self.skip_ws();
            let slot = match self.peek() {
                Some('_') => &mut sub,
                Some('^') => &mut sup,
                Some('\\') if matches!(self.peek_cmd().as_deref(), Some("limits" | "nolimits")) => {
                    self.i += 1 + self.name_at(self.i + 1).1;
                    continue;
                }
                _ => break,
            };
            if slot.is_some() {
                return Err(Unsupported); // a double script, as TeX says
            }
            self.i += 1;
            *slot = Some(self.arg()?);
        }
        let tags = if limits {
            ["munder", "mover", "munderover"]
        } else {
            ["msub", "msup", "msubsup"]
        };
        Ok(match (sub, sup) {
            (None, None) => base,
            (Some(b), None) => Node::el(tags[0], vec![base, b]),
            (None, Some(p)) => Node::el(tags[1], vec![base, p]),
            (Some(b), Some(p)) => Node::el(tags[2], vec![base, b, p]),
        })
    }

    /// A command's argument or a script: a group, one digit, or one atom.
    fn arg(&mut self) -> Res<Node> {
        self.skip_ws();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                self.i += 1;
                Ok(Node::leaf("mn", c))
            }
            None | Some('}' | '&' | '^' | '_') => Err(Unsupported),
            _ => Ok(self.atom()?.0),
        }
    }

    /// One atom (and whether its scripts are limits), nesting at most [`MAX_DEPTH`].
    fn atom(&mut self) -> Res<(Node, bool)> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Unsupported);
        }
        let r = self.atom_inner();
        self.depth -= 1;
        r
    }

    fn atom_inner(&mut self) -> Res<(Node, bool)> {
        let Some(c) = self.peek() else {
            return Err(Unsupported);
        };
        let node = match c {
            '^' | '_' => return Ok((Node::el("mrow", vec![]), false)),
            '{' => {
                self.i += 1;
                let kids = self.seq(false)?;
                self.expect('}')?;
                return Ok((mrow_or_single(kids), false));
            }
            '\\' => return self.command(),
            '0'..='9' | '.'
                if self.s.get(self.i + 1).is_some_and(char::is_ascii_digit) || c != '.' =>
            {
                let start = self.i;
                while self.peek().is_some_and(|d| d.is_ascii_digit())
                    || (self.peek() == Some('.')
                        && self.s.get(self.i + 1).is_some_and(char::is_ascii_digit))
                {
                    self.i += 1;
                }
                return Ok((
                    Node::leaf("mn", self.s[start..self.i].iter().collect::<String>()),
                    false,
                ));
            }
            c if c.is_alphabetic() => Node::leaf("mi", c),
            '(' | ')' | '[' | ']' | '|' => mo(c).attr("stretchy", "false"),
            '-' => mo('−'),
            '*' => mo('∗'),
            '\'' => mo('′'),
            '~' => Node::el("mspace", vec![]).attr("width", "0.25em"),
            c => mo(c),
        };
        self.i += 1;
        Ok((node, false))
    }

    fn command(&mut self) -> Res<(Node, bool)> {
        let (name, n) = self.name_at(self.i + 1);
        self.i += 1 + n;
        let name = name.as_str();
        let node = match name {
            "frac" | "dfrac" | "tfrac" | "cfrac" => {
                let f = Node::el("mfrac", vec![self.arg()?, self.arg()?]);
                match name {
                    "dfrac" | "cfrac" => f.attr("displaystyle", "true"),
                    "tfrac" => f.attr("displaystyle", "false"),
                    _ => f,
                }
            }
            "binom" | "dbinom" | "tbinom" => {
                let f =
                    Node::el("mfrac", vec![self.arg()?, self.arg()?]).attr("linethickness", "0");
                Node::el("mrow", vec![mo('('), f, mo(')')])
            }
            "sqrt" => {
                self.skip_ws();
                if self.peek() == Some('[') {
                    self.i += 1;
                    let index = mrow_or_single(self.seq(true)?);
                    self.expect(']')?;
                    Node::el("mroot", vec![self.arg()?, index])
                } else {
                    Node::el("msqrt", vec![self.arg()?])
                }
            }
            "text" | "textrm" | "textnormal" | "textit" | "textbf" | "textsf" | "texttt"
            | "mbox" | "hbox" => {
                let t = self.raw_group()?;
                // Edge spaces would collapse; TeX keeps them.
                let n = t.len() - t.trim_start().len();
                let m = t.trim_end().len();
                let t = if t.trim().is_empty() {
                    "\u{a0}".repeat(t.len())
                } else {
                    format!(
                        "{}{}{}",
                        "\u{a0}".repeat(n),
                        &t[n..m],
                        "\u{a0}".repeat(t.len() - m)
                    )
                };
                Node::leaf(
                    "mtext",
                    t.replace("\\%", "%")
                        .replace("\\$", "$")
                        .replace("\\&", "&"),
                )
            }
            "mathrm" | "operatorname" | "mathup" | "mathbf" | "boldsymbol" | "bm" | "mathbb"
            | "mathcal" | "mathscr" => {
                let at = self.i;
                let t = self.raw_group()?;
                if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ') {
                    // Math inside (`\mathbf{\hat x}`): drawn without the font change.
                    self.i = at;
                    self.arg()?
                } else if matches!(name, "mathrm" | "operatorname" | "mathup") {
                    let t: String = t.split_whitespace().collect();
                    Node::leaf("mi", t).attr("mathvariant", "normal")
                } else {
                    let style = match name {
                        "mathbb" => "double-struck",
                        "mathcal" | "mathscr" => "script",
                        _ => "bold",
                    };
                    let kids: Vec<Node> = t
                        .chars()
                        .filter(|c| *c != ' ')
                        .map(|c| {
                            let tag = if c.is_ascii_digit() { "mn" } else { "mi" };
                            Node::leaf(tag, styled(c, style))
                        })
                        .collect();
                    mrow_or_single(kids)
                }
            }
            "mathit" | "mathsf" | "mathtt" | "mathnormal" => self.arg()?,
            "left" => {
                let open = self.delimiter()?;
                let mut kids: Vec<Node> = open.into_iter().collect();
                kids.extend(self.seq(false)?);
                if self.peek_cmd().as_deref() != Some("right") {
                    return Err(Unsupported);
                }
                self.i += 6;
                kids.extend(self.delimiter()?);
                Node::el("mrow", kids)
            }
            "begin" => self.environment()?,
            _ => {
                if let Some(c) = find(GREEK, name) {
                    Node::leaf("mi", c)
                } else if let Some(c) = find(UPRIGHT, name) {
                    Node::leaf("mi", c).attr("mathvariant", "normal")
                } else if let Some(c) = find(OPS, name) {
                    mo(c)
                } else if let Some(c) = find(BIG_OPS, name) {
                    return Ok((mo(c), true));
                } else if let Some(limits) = find(FUNCTIONS, name) {
                    let f = Node::leaf("mi", if name == "bmod" { "mod" } else { name });
                    return Ok((f, limits));
                } else if let Some(&(_, c, under)) = ACCENTS.iter().find(|a| a.0 == name) {
                    let base = self.arg()?;
                    let stretchy = if matches!(name, "overline" | "underline") {
                        "true"
                    } else {
                        "false"
                    };
                    let mark = mo(c).attr("stretchy", stretchy);
                    if under {
                        Node::el("munder", vec![base, mark]).attr("accentunder", "true")
                    } else {
                        Node::el("mover", vec![base, mark]).attr("accent", "true")
                    }
                } else if let Some(w) = find(SPACES, name) {
                    Node::el("mspace", vec![]).attr("width", w)
                } else {
                    return Err(Unsupported);
                }
            }
        };
        Ok((node, false))
    }

    /// The delimiter after `\left` or `\right` (`.` is none).
    fn delimiter(&mut self) -> Res<Option<Node>> {
        self.skip_ws();
        let c = match self.peek() {
            Some('.') => {
                self.i += 1;
                return Ok(None);
            }
            Some('\\') => {
                let (name, n) = self.name_at(self.i + 1);
                self.i += n;
                find(OPS, &name).ok_or(Unsupported)?
            }
            Some(c @ ('(' | ')' | '[' | ']' | '|' | '/')) => c,
            _ => return Err(Unsupported),
        };
        self.i += 1;
        Ok(Some(mo(c)))
    }

    /// `\begin{name}…\end{name}` (the `\begin` already read).
    fn environment(&mut self) -> Res<Node> {
        let name = self.raw_group()?;
        let (open, close, align) = match name.as_str() {
            "matrix" | "smallmatrix" | "array" => (None, None, None),
            "pmatrix" => (Some('('), Some(')'), None),
            "bmatrix" => (Some('['), Some(']'), None),
            "Bmatrix" => (Some('{'), Some('}'), None),
            "vmatrix" => (Some('|'), Some('|'), None),
            "Vmatrix" => (Some('‖'), Some('‖'), None),
            "cases" => (Some('{'), None, Some("left")),
            "aligned" | "align" | "align*" | "alignat" | "split" | "eqnarray" => {
                (None, None, Some("right left"))
            }
            "gathered" | "gather" | "gather*" | "equation" | "equation*" => (None, None, None),
            _ => return Err(Unsupported),
        };
        if name == "array" {
            self.raw_group()?; // the column spec
        }
        let rows = self.table()?;
        if self.peek_cmd().as_deref() != Some("end") {
            return Err(Unsupported);
        }
        self.i += 4;
        if self.raw_group()? != name {
            return Err(Unsupported);
        }
        let table = mtable(rows, align);
        if open.is_none() && close.is_none() {
            return Ok(table);
        }
        let mut kids: Vec<Node> = open.map(mo).into_iter().collect();
        kids.push(table);
        kids.extend(close.map(mo));
        Ok(Node::el("mrow", kids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(tex: &str) -> String {
        to_mathml(tex, false).map_or_else(|| "(source)".into(), |n| n.to_string())
    }

    /// Expressions from real tutor replies and the MathML each must become.
    #[test]
    fn tutor_expressions_convert_to_the_expected_mathml() {
        let table: &[(&str, &str)] = &[
            // Numbers, letters, operators.
            (
                "x^2 + 1",
                "<math><msup><mi>x</mi><mn>2</mn></msup><mo>+</mo><mn>1</mn></math>",
            ),
            ("3.14", "<math><mn>3.14</mn></math>"),
            (
                "a - b = c",
                "<math><mi>a</mi><mo>−</mo><mi>b</mi><mo>=</mo><mi>c</mi></math>",
            ),
            // Fractions.
            (
                "\\frac{a}{b}",
                "<math><mfrac><mi>a</mi><mi>b</mi></mfrac></math>",
            ),
            (
                "\\frac12",
                "<math><mfrac><mn>1</mn><mn>2</mn></mfrac></math>",
            ),
            (
                "\\dfrac{x+1}{2}",
                "<math><mfrac displaystyle=\"true\"><mrow><mi>x</mi><mo>+</mo><mn>1</mn></mrow><mn>2</mn></mfrac></math>",
            ),
            (
                "x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a}",
                "<math><mi>x</mi><mo>=</mo><mfrac><mrow><mo>−</mo><mi>b</mi><mo>±</mo><msqrt><mrow><msup><mi>b</mi><mn>2</mn></msup><mo>−</mo><mn>4</mn><mi>a</mi><mi>c</mi></mrow></msqrt></mrow><mrow><mn>2</mn><mi>a</mi></mrow></mfrac></math>",
            ),
            // Roots.
            (
                "\\sqrt[3]{27} = 3",
                "<math><mroot><mn>27</mn><mn>3</mn></mroot><mo>=</mo><mn>3</mn></math>",
            ),
            // Nested scripts.
            (
                "x^{2^n}",
                "<math><msup><mi>x</mi><msup><mn>2</mn><mi>n</mi></msup></msup></math>",
            ),
            (
                "a_{i,j}",
                "<math><msub><mi>a</mi><mrow><mi>i</mi><mo>,</mo><mi>j</mi></mrow></msub></math>",
            ),
            (
                "x_1^2",
                "<math><msubsup><mi>x</mi><mn>1</mn><mn>2</mn></msubsup></math>",
            ),
            (
                "e^{-x^2}",
                "<math><msup><mi>e</mi><mrow><mo>−</mo><msup><mi>x</mi><mn>2</mn></msup></mrow></msup></math>",
            ),
            (
                "\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}",
                "<math><munderover><mo>∑</mo><mrow><mi>i</mi><mo>=</mo><mn>1</mn></mrow><mi>n</mi></munderover><mi>i</mi><mo>=</mo><mfrac><mrow><mi>n</mi><mo stretchy=\"false\">(</mo><mi>n</mi><mo>+</mo><mn>1</mn><mo stretchy=\"false\">)</mo></mrow><mn>2</mn></mfrac></math>",
            ),
            (
                "\\int_0^1 x\\,dx",
                "<math><msubsup><mo>∫</mo><mn>0</mn><mn>1</mn></msubsup><mi>x</mi><mspace width=\"0.1667em\"></mspace><mi>d</mi><mi>x</mi></math>",
            ),
            (
                "\\lim_{x\\to 0} \\frac{\\sin x}{x} = 1",
                "<math><munder><mi>lim</mi><mrow><mi>x</mi><mo>→</mo><mn>0</mn></mrow></munder><mfrac><mrow><mi>sin</mi><mi>x</mi></mrow><mi>x</mi></mfrac><mo>=</mo><mn>1</mn></math>",
            ),
            // Greek, relations, functions.
            (
                "\\Delta G = \\Delta H - T\\Delta S",
                "<math><mi mathvariant=\"normal\">Δ</mi><mi>G</mi><mo>=</mo><mi mathvariant=\"normal\">Δ</mi><mi>H</mi><mo>−</mo><mi>T</mi><mi mathvariant=\"normal\">Δ</mi><mi>S</mi></math>",
            ),
            (
                "\\alpha \\le \\beta \\ne \\pi",
                "<math><mi>α</mi><mo>≤</mo><mi>β</mi><mo>≠</mo><mi>π</mi></math>",
            ),
            (
                "\\log_2 8 = 3",
                "<math><msub><mi>log</mi><mn>2</mn></msub><mn>8</mn><mo>=</mo><mn>3</mn></math>",
            ),
            (
                "90^\\circ",
                "<math><msup><mn>90</mn><mo>∘</mo></msup></math>",
            ),
            // \left and \right.
            (
                "\\left( \\frac{1}{2} \\right)^2",
                "<math><msup><mrow><mo>(</mo><mfrac><mn>1</mn><mn>2</mn></mfrac><mo>)</mo></mrow><mn>2</mn></msup></math>",
            ),
            (
                "\\left\\{ x \\right.",
                "<math><mrow><mo>{</mo><mi>x</mi></mrow></math>",
            ),
            // Text and fonts.
            (
                "v = 3\\text{ m/s}",
                "<math><mi>v</mi><mo>=</mo><mn>3</mn><mtext>\u{a0}m/s</mtext></math>",
            ),
            (
                "\\mathrm{pH} = 7",
                "<math><mi mathvariant=\"normal\">pH</mi><mo>=</mo><mn>7</mn></math>",
            ),
            (
                "\\mathbf{F} = m\\mathbf{a}",
                "<math><mi>𝐅</mi><mo>=</mo><mi>m</mi><mi>𝐚</mi></math>",
            ),
            (
                "x \\in \\mathbb{R}",
                "<math><mi>x</mi><mo>∈</mo><mi>ℝ</mi></math>",
            ),
            // Accents.
            (
                "\\vec{v} \\cdot \\hat{n}",
                "<math><mover accent=\"true\"><mi>v</mi><mo stretchy=\"false\">→</mo></mover><mo>⋅</mo><mover accent=\"true\"><mi>n</mi><mo stretchy=\"false\">^</mo></mover></math>",
            ),
            (
                "\\overline{AB}",
                "<math><mover accent=\"true\"><mrow><mi>A</mi><mi>B</mi></mrow><mo stretchy=\"true\">‾</mo></mover></math>",
            ),
            // Escapes and spacing.
            ("50\\%", "<math><mn>50</mn><mo>%</mo></math>"),
            (
                "\\{1, 2\\}",
                "<math><mo>{</mo><mn>1</mn><mo>,</mo><mn>2</mn><mo>}</mo></math>",
            ),
            (
                "a \\quad b",
                "<math><mi>a</mi><mspace width=\"1em\"></mspace><mi>b</mi></math>",
            ),
            // Matrices and cases.
            (
                "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
                "<math><mrow><mo>(</mo><mtable><mtr><mtd><mn>1</mn></mtd><mtd><mn>2</mn></mtd></mtr><mtr><mtd><mn>3</mn></mtd><mtd><mn>4</mn></mtd></mtr></mtable><mo>)</mo></mrow></math>",
            ),
            (
                "\\begin{bmatrix} a & b \\end{bmatrix}",
                "<math><mrow><mo>[</mo><mtable><mtr><mtd><mi>a</mi></mtd><mtd><mi>b</mi></mtd></mtr></mtable><mo>]</mo></mrow></math>",
            ),
            (
                "\\det \\begin{vmatrix} a & b \\\\ c & d \\end{vmatrix} = ad - bc",
                "<math><mi>det</mi><mrow><mo>|</mo><mtable><mtr><mtd><mi>a</mi></mtd><mtd><mi>b</mi></mtd></mtr><mtr><mtd><mi>c</mi></mtd><mtd><mi>d</mi></mtd></mtr></mtable><mo>|</mo></mrow><mo>=</mo><mi>a</mi><mi>d</mi><mo>−</mo><mi>b</mi><mi>c</mi></math>",
            ),
            (
                "|x| = \\begin{cases} x & \\text{if } x \\ge 0 \\\\ -x & \\text{otherwise} \\end{cases}",
                "<math><mo stretchy=\"false\">|</mo><mi>x</mi><mo stretchy=\"false\">|</mo><mo>=</mo><mrow><mo>{</mo><mtable columnalign=\"left\"><mtr><mtd><mi>x</mi></mtd><mtd><mtext>if\u{a0}</mtext><mi>x</mi><mo>≥</mo><mn>0</mn></mtd></mtr><mtr><mtd><mo>−</mo><mi>x</mi></mtd><mtd><mtext>otherwise</mtext></mtd></mtr></mtable></mrow></math>",
            ),
            // Alignment.
            (
                "\\begin{aligned} 2x + 3 &= 7 \\\\ x &= 2 \\end{aligned}",
                "<math><mtable columnalign=\"right left\"><mtr><mtd><mn>2</mn><mi>x</mi><mo>+</mo><mn>3</mn></mtd><mtd><mo>=</mo><mn>7</mn></mtd></mtr><mtr><mtd><mi>x</mi></mtd><mtd><mo>=</mo><mn>2</mn></mtd></mtr></mtable></math>",
            ),
            (
                "a &= b \\\\ &= c \\\\",
                "<math><mtable columnalign=\"right left\"><mtr><mtd><mi>a</mi></mtd><mtd><mo>=</mo><mi>b</mi></mtd></mtr><mtr><mtd></mtd><mtd><mo>=</mo><mi>c</mi></mtd></mtr></mtable></math>",
            ),
            // Ignored sizing commands keep their operands.
            (
                "\\sum\\limits_{k} \\big( k \\big)",
                "<math><munder><mo>∑</mo><mi>k</mi></munder><mo stretchy=\"false\">(</mo><mi>k</mi><mo stretchy=\"false\">)</mo></math>",
            ),
            // Text is escaped when serialized.
            ("a < b", "<math><mi>a</mi><mo>&lt;</mo><mi>b</mi></math>"),
        ];
        for (tex, want) in table {
            assert_eq!(&inline(tex), want, "{tex}");
        }
    }

    #[test]
    fn display_math_is_marked_block() {
        assert_eq!(
            to_mathml("E = mc^2", true)
                .map(|n| n.to_string())
                .as_deref(),
            Some(
                "<math display=\"block\"><mi>E</mi><mo>=</mo><mi>m</mi><msup><mi>c</mi><mn>2</mn></msup></math>"
            )
        );
    }

    #[test]
    fn anything_unsupported_or_malformed_falls_back_to_the_source() {
        for tex in [
            "\\unknowncommand{x}",
            "x + \\frac{1}{\\foo}",
            "\\color{red}{x}",
            "\\begin{tikzpicture}\\end{tikzpicture}",
            "\\begin{pmatrix} 1 \\end{bmatrix}",
            "{x",
            "x}",
            "\\frac{a}",
            "\\sqrt",
            "x^",
            "x^2^3",
            "x_1_2",
            "\\left( x",
            "x \\right)",
            "\\text{open",
            "\\",
        ] {
            assert_eq!(inline(tex), "(source)", "{tex}");
        }
    }

    #[test]
    fn ten_thousand_nested_braces_fall_back_without_overflowing() {
        let deep = format!("{}x{}", "{".repeat(10_000), "}".repeat(10_000));
        assert_eq!(to_mathml(&deep, false), None);
        let deep = format!("{}x", "\\frac{1}{".repeat(10_000));
        assert_eq!(to_mathml(&deep, false), None);
        let deep = format!("{}2", "x^".repeat(10_000));
        assert_eq!(to_mathml(&deep, false), None);
        // Nesting a formula really uses is fine.
        let ok = format!("{}x{}", "{".repeat(20), "}".repeat(20));
        assert_eq!(inline(&ok), "<math><mi>x</mi></math>");
    }
}
