//! LaTeX math (the subset tutors write) to MathML, which browsers draw natively.
//!
//! Hand-written because of size: the `latex2mathml` crate (0.2.3), built into the widget,
//! added 12,470 B brotli to the on-open download (143,175 → 155,645 B, over the 153,600 B
//! cap on its own) and returns an HTML string, which the widget never injects. This
//! converter with its DOM builder adds about 6,000 B (math, code-block header and their
//! CSS together: 143,175 → 150,882 B). This
//! converter covers what tutoring replies use: fractions, roots, nested scripts, Greek,
//! operators and relations, functions, `\left…\right`, `\text`, font commands, accents,
//! matrices, `cases` and `aligned`. Anything else (an unknown command, unbalanced braces,
//! nesting past [`MAX_DEPTH`]) makes [`to_mathml`] return `None`, and the caller shows
//! the source: never half an expression.

use std::fmt::Write;

/// How deep groups and commands may nest. A hostile `{{{{…` 10,000 deep would otherwise
/// overflow the stack; real formulas stay far below this.
pub const MAX_DEPTH: usize = 32;

/// An element's one attribute (none here needs two).
pub type Attr = Option<(&'static str, &'static str)>;

/// MathML as a flat list in document order (a tree of nodes made larger wasm: wrapping
/// a base in `msup` is an insert here, not a move of subtrees).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Open(&'static str, Attr),
    /// A token element (`mi`, `mn`, `mo`, `mtext`) and its text.
    Leaf(&'static str, Attr, String),
    Close(&'static str),
}

/// MathML markup of `toks`, for the tests (the widget builds DOM nodes instead).
pub fn markup(toks: &[Tok]) -> String {
    let mut out = String::new();
    let open = |out: &mut String, tag: &str, attr: &Attr| {
        let _ = write!(out, "<{tag}");
        if let Some((k, v)) = attr {
            let _ = write!(out, " {k}=\"{v}\"");
        }
        out.push('>');
    };
    for t in toks {
        match t {
            Tok::Open(tag, attr) => open(&mut out, tag, attr),
            Tok::Leaf(tag, attr, text) => {
                open(&mut out, tag, attr);
                let text = text.replace('&', "&amp;").replace('<', "&lt;");
                let _ = write!(out, "{}</{tag}>", text.replace('>', "&gt;"));
            }
            Tok::Close(tag) => {
                let _ = write!(out, "</{tag}>");
            }
        }
    }
    out
}

/// Converts `tex` (without its `$` delimiters) to a `<math>` element, or `None` when any
/// part of it is outside the supported subset.
pub fn to_mathml(tex: &str, display: bool) -> Option<Vec<Tok>> {
    let mut p = Parser {
        s: tex,
        i: 0,
        depth: 0,
        out: vec![Tok::Open("math", display.then_some(("display", "block")))],
    };
    // `\\` and `&` outside an environment: lines as in `gathered` or `aligned`.
    p.table(None).ok()?;
    if p.i < tex.len() {
        return None; // a stray `}`, `\right` or `\end`
    }
    p.out.push(Tok::Close("math"));
    Some(p.out)
}

/// Marks an unsupported construct; the whole expression then falls back to its source.
struct Unsupported;

type Res<T> = Result<T, Unsupported>;

struct Parser<'a> {
    /// The source, read at byte `i`.
    s: &'a str,
    i: usize,
    depth: usize,
    out: Vec<Tok>,
}

/// Commands that stand for one thing, packed in one string (a table of `&str` pairs is
/// larger in the wasm): `name=` then a kind and its text. Kinds: `i` identifier, `I`
/// upright identifier, `o` operator, `O` big operator (limits under and over), `f`
/// function name (`F`: with limits under), `a` accent over (`A`: stretching), `u`
/// stretching accent under, `s` space of the given width, `x` ignored (sizes, styles).
const SYMBOLS: &str = "alpha=iα beta=iβ gamma=iγ delta=iδ epsilon=iϵ varepsilon=iε zeta=iζ \
eta=iη theta=iθ vartheta=iϑ iota=iι kappa=iκ lambda=iλ mu=iμ nu=iν xi=iξ omicron=iο pi=iπ \
varpi=iϖ rho=iρ varrho=iϱ sigma=iσ varsigma=iς tau=iτ upsilon=iυ phi=iϕ varphi=iφ chi=iχ \
psi=iψ omega=iω infty=i∞ partial=i∂ nabla=i∇ emptyset=i∅ varnothing=i∅ hbar=iℏ ell=iℓ \
aleph=iℵ Re=iℜ Im=iℑ Gamma=IΓ Delta=IΔ Theta=IΘ Lambda=IΛ Xi=IΞ Pi=IΠ Sigma=IΣ \
Upsilon=IΥ Phi=IΦ Psi=IΨ Omega=IΩ cdot=o⋅ times=o× div=o÷ pm=o± mp=o∓ le=o≤ leq=o≤ \
ge=o≥ geq=o≥ ne=o≠ neq=o≠ approx=o≈ equiv=o≡ sim=o∼ simeq=o≃ cong=o≅ propto=o∝ ll=o≪ \
gg=o≫ to=o→ rightarrow=o→ leftarrow=o← gets=o← Rightarrow=o⇒ Leftarrow=o⇐ \
leftrightarrow=o↔ Leftrightarrow=o⇔ implies=o⟹ iff=o⟺ mapsto=o↦ uparrow=o↑ \
downarrow=o↓ rightleftharpoons=o⇌ in=o∈ notin=o∉ ni=o∋ subset=o⊂ subseteq=o⊆ supset=o⊃ \
supseteq=o⊇ cup=o∪ cap=o∩ setminus=o∖ forall=o∀ exists=o∃ neg=o¬ lnot=o¬ land=o∧ \
wedge=o∧ lor=o∨ vee=o∨ ldots=o… dots=o… cdots=o⋯ vdots=o⋮ ddots=o⋱ degree=o° circ=o∘ \
ast=o∗ star=o⋆ bullet=o∙ oplus=o⊕ otimes=o⊗ perp=o⊥ parallel=o∥ mid=o∣ angle=o∠ \
triangle=o△ therefore=o∴ because=o∵ prime=o′ colon=o: langle=o⟨ rangle=o⟩ lfloor=o⌊ \
rfloor=o⌋ lceil=o⌈ rceil=o⌉ vert=o| lvert=o| rvert=o| Vert=o‖ lVert=o‖ rVert=o‖ \
lbrace=o{ rbrace=o} int=o∫ iint=o∬ iiint=o∭ oint=o∮ {=o{ }=o} |=o‖ %=o% $=o$ &=o& #=o# \
_=o_ sum=O∑ prod=O∏ coprod=O∐ bigcup=O⋃ bigcap=O⋂ sin=f cos=f tan=f sec=f csc=f cot=f \
arcsin=f arccos=f arctan=f sinh=f cosh=f tanh=f log=f ln=f lg=f exp=f det=f dim=f ker=f \
deg=f arg=f gcd=f lcm=f mod=f bmod=fmod lim=F max=F min=F sup=F inf=F hat=a^ widehat=a^ \
bar=a¯ vec=a→ overrightarrow=A→ dot=a˙ ddot=a¨ tilde=a˜ widetilde=a˜ overline=A‾ \
underline=u_ ,=s0.1667em :=s0.2222em >=s0.2222em ;=s0.2778em enspace=s0.5em quad=s1em \
qquad=s2em !=x displaystyle=x textstyle=x limits=x nolimits=x frac=r dfrac=rD cfrac=rD tfrac=rT \
binom=rB sqrt=q text=t textrm=t textnormal=t textit=t textbf=t mbox=t mathrm=m \
operatorname=m mathbf=b boldsymbol=b mathbb=d mathit=g mathsf=g mathtt=g mathcal=g left=l \
begin=e";

/// Environments: `name=`, the delimiters on each side (`_`: none), then `l` (left
/// aligned, for `cases`), `r` (right and left, for `aligned`) or `a` (a column spec
/// follows, for `array`).
const ENVIRONMENTS: &str = "matrix=__ smallmatrix=__ gathered=__ gather=__ gather*=__ \
equation=__ equation*=__ array=__a pmatrix=() bmatrix=[] Bmatrix={} vmatrix=|| Vmatrix=‖‖ \
cases={_l aligned=__r align=__r align*=__r split=__r";

/// The entry for `name` in a table like [`SYMBOLS`] (`\\big(`, `\\Bigl[`…: sizes,
/// ignored).
fn lookup(table: &'static str, name: &str) -> Option<&'static str> {
    if name.len() <= 6 && (name.starts_with("big") || name.starts_with("Big")) {
        return Some("x");
    }
    table.split(' ').find_map(|e| {
        e.split_once('=')
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v)
    })
}

fn mo(c: char) -> Tok {
    Tok::Leaf("mo", None, c.into())
}

/// Maps a letter or digit to a Unicode math alphabet (MathML Core draws no
/// `mathvariant` but `normal`): bold, or double-struck with its older letters.
fn styled(c: char, double: bool) -> char {
    let (upper, lower, digit) = if double {
        if let Some(i) = "CHNPQRZ".find(c) {
            return "ℂℍℕℙℚℝℤ".chars().nth(i).unwrap_or(c);
        }
        (0x1D538, 0x1D552, 0x1D7D8)
    } else {
        (0x1D400, 0x1D41A, 0x1D7CE)
    };
    let code = match c {
        'A'..='Z' => upper + (c as u32 - 'A' as u32),
        'a'..='z' => lower + (c as u32 - 'a' as u32),
        _ => digit + (c as u32 - '0' as u32),
    };
    char::from_u32(code).unwrap_or(c)
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i..)?.chars().next()
    }

    fn byte_at(&self, i: usize) -> u8 {
        self.s.as_bytes().get(i).copied().unwrap_or(0)
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.i += c.len_utf8();
        }
    }

    /// The name of the command whose `\` is at `self.i` ("" if there is none).
    fn cmd_name(&self) -> &'a str {
        if self.byte_at(self.i) != b'\\' {
            return "";
        }
        let rest = &self.s[self.i + 1..];
        let n = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let n = if n == 0 {
            rest.chars().next().map_or(0, char::len_utf8)
        } else {
            n
        };
        &rest[..n]
    }

    fn expect(&mut self, c: char) -> Res<()> {
        self.skip_ws();
        if self.peek() != Some(c) {
            return Err(Unsupported);
        }
        self.i += 1;
        Ok(())
    }

    /// The text of a `{…}` group, braces balanced, taken literally.
    fn raw_group(&mut self) -> Res<&'a str> {
        self.expect('{')?;
        let start = self.i;
        let mut depth = 0usize;
        while self.i < self.s.len() {
            self.i += 1;
            match self.byte_at(self.i - 1) {
                b'\\' => self.i += 1,
                b'{' => depth += 1,
                b'}' if depth == 0 => return Ok(&self.s[start..self.i - 1]),
                b'}' => depth -= 1,
                _ => {}
            }
        }
        Err(Unsupported)
    }

    /// Emits a token element (one function, not a `push` inlined at every call).
    #[inline(never)]
    fn leaf(&mut self, tag: &'static str, attr: Attr, text: &str) {
        self.out.push(Tok::Leaf(tag, attr, text.to_owned()));
    }

    #[inline(never)]
    fn push(&mut self, t: Tok) {
        self.out.push(t);
    }

    /// Wraps what was emitted since `start` in `tag`.
    fn wrap(&mut self, start: usize, tag: &'static str, attr: Attr) {
        self.out.insert(start, Tok::Open(tag, attr));
        self.push(Tok::Close(tag));
    }

    /// Moves `out[from..to]` to the end.
    fn move_to_end(&mut self, from: usize, to: usize) {
        let mut tail = self.out.split_off(to);
        let mut moved = self.out.split_off(from);
        self.out.append(&mut tail);
        self.out.append(&mut moved);
    }

    /// Cells separated by `&` and rows by `\\`, up to `}`, `\end`, `\right` or the end:
    /// an `mtable` with columnalign `align` (`Some("")`: centred), or with `None` only
    /// if there is more than one cell (then aligned if any row has two).
    fn table(&mut self, align: Option<&'static str>) -> Res<()> {
        let start = self.out.len();
        let (mut cells, mut amp, mut row_at) = (1, false, 0);
        loop {
            self.seq(false)?;
            let row_end = self.cmd_name() == "\\";
            if !row_end && self.peek() != Some('&') {
                break;
            }
            self.i += 1 + usize::from(row_end);
            amp |= !row_end;
            cells += 1;
            self.push(Tok::Close("mtd"));
            if row_end {
                // `\\[4pt]`: extra spacing, not drawn.
                self.skip_ws();
                if self.peek() == Some('[') {
                    while self.peek().is_some_and(|c| c != ']') {
                        self.i += 1;
                    }
                    self.expect(']')?;
                }
                self.push(Tok::Close("mtr"));
                self.push(Tok::Open("mtr", None));
            }
            self.push(Tok::Open("mtd", None));
            row_at = if row_end { self.out.len() } else { 0 };
        }
        // A trailing `\\` leaves an empty last row.
        let empty_last = row_at == self.out.len();
        if align.is_none() && cells == 1 {
            return Ok(());
        }
        let align = align.unwrap_or(if amp { "right left" } else { "" });
        let attr = (!align.is_empty()).then_some(("columnalign", align));
        self.out.insert(start, Tok::Open("mtd", None));
        self.out.insert(start, Tok::Open("mtr", None));
        self.out.insert(start, Tok::Open("mtable", attr));
        if empty_last {
            self.out.truncate(self.out.len() - 2);
        } else {
            self.push(Tok::Close("mtd"));
            self.push(Tok::Close("mtr"));
        }
        self.push(Tok::Close("mtable"));
        Ok(())
    }

    /// Atoms with their scripts, up to a closer (`in_opt`: also `]`); how many.
    fn seq(&mut self, in_opt: bool) -> Res<usize> {
        let mut n = 0;
        loop {
            self.skip_ws();
            let name = self.cmd_name();
            match self.peek() {
                None | Some('}' | '&') => break,
                Some(']') if in_opt => break,
                _ if matches!(name, "\\" | "end" | "right") => break,
                _ if lookup(SYMBOLS, name) == Some("x") => {
                    self.i += 1 + name.len();
                    continue;
                }
                _ => {}
            }
            let start = self.out.len();
            let limits = self.atom()?;
            self.scripts(start, limits)?;
            n += 1;
        }
        Ok(n)
    }

    /// Attaches any `^` and `_` to the base emitted from `start`.
    fn scripts(&mut self, start: usize, limits: bool) -> Res<()> {
        // Where each script starts; the sub must come first in the output.
        let (mut sub, mut sup) = (None, None);
        loop {
            self.skip_ws();
            let slot = match self.peek() {
                Some('_') => &mut sub,
                Some('^') => &mut sup,
                _ if matches!(self.cmd_name(), "limits" | "nolimits") => {
                    self.i += 1 + self.cmd_name().len();
                    continue;
                }
                _ => break,
            };
            if slot.is_some() {
                return Err(Unsupported); // a double script, as TeX says
            }
            self.i += 1;
            *slot = Some(self.out.len());
            self.arg()?;
        }
        let [under, over, both] = if limits {
            ["munder", "mover", "munderover"]
        } else {
            ["msub", "msup", "msubsup"]
        };
        match (sub, sup) {
            (None, None) => {}
            (Some(_), None) => self.wrap(start, under, None),
            (None, Some(_)) => self.wrap(start, over, None),
            (Some(b), Some(p)) => {
                if p < b {
                    // `x^2_1`: the sup goes after the sub.
                    self.move_to_end(p, b);
                }
                self.wrap(start, both, None);
            }
        }
        Ok(())
    }

    /// A command's argument or a script: a group, one digit, or one atom.
    fn arg(&mut self) -> Res<()> {
        self.skip_ws();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                self.i += 1;
                self.leaf("mn", None, c.encode_utf8(&mut [0; 4]));
            }
            None | Some('}' | '&' | '^' | '_') => return Err(Unsupported),
            _ => {
                self.atom()?;
            }
        }
        Ok(())
    }

    /// One atom; true if its scripts are limits. Nests at most [`MAX_DEPTH`].
    fn atom(&mut self) -> Res<bool> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Unsupported);
        }
        let r = self.atom_inner();
        self.depth -= 1;
        r
    }

    fn atom_inner(&mut self) -> Res<bool> {
        let Some(c) = self.peek() else {
            return Err(Unsupported);
        };
        let start = self.out.len();
        let src = self.s.as_bytes();
        let digit_at = |i: usize| src.get(i).is_some_and(u8::is_ascii_digit);
        let tok = match c {
            '^' | '_' => {
                self.push(Tok::Open("mrow", None));
                self.push(Tok::Close("mrow"));
                return Ok(false);
            }
            '{' => {
                self.i += 1;
                let n = self.seq(false)?;
                self.expect('}')?;
                if n != 1 {
                    self.wrap(start, "mrow", None);
                }
                return Ok(false);
            }
            '\\' => return self.command(),
            '0'..='9' | '.' if c != '.' || digit_at(self.i + 1) => {
                let from = self.i;
                while digit_at(self.i) || (self.peek() == Some('.') && digit_at(self.i + 1)) {
                    self.i += 1;
                }
                self.leaf("mn", None, &self.s[from..self.i]);
                return Ok(false);
            }
            '~' => ("mspace", Some(("width", "0.25em")), '\0'),
            c if c.is_alphabetic() => ("mi", None, c),
            '(' | ')' | '[' | ']' | '|' => ("mo", Some(("stretchy", "false")), c),
            '-' => ("mo", None, '−'),
            '*' => ("mo", None, '∗'),
            '\'' => ("mo", None, '′'),
            c => ("mo", None, c),
        };
        self.i += c.len_utf8();
        let (tag, attr, c) = tok;
        let mut buf = [0; 4];
        let text = if c == '\0' {
            ""
        } else {
            c.encode_utf8(&mut buf)
        };
        self.leaf(tag, attr, text);
        Ok(false)
    }

    fn command(&mut self) -> Res<bool> {
        let name = self.cmd_name();
        self.i += 1 + name.len();
        let start = self.out.len();
        let info = if name == " " {
            "s0.25em"
        } else {
            lookup(SYMBOLS, name).ok_or(Unsupported)?
        };
        let mut chars = info.chars();
        let kind = chars.next().unwrap_or('x');
        let text = chars.as_str();
        let (tag, attr, text) = match kind {
            'i' => ("mi", None, text),
            'I' => ("mi", Some(("mathvariant", "normal")), text),
            'o' | 'O' => ("mo", None, text),
            'f' | 'F' if text.is_empty() => ("mi", None, name),
            'f' | 'F' => ("mi", None, text),
            's' => ("mspace", Some(("width", text)), ""),
            'a' | 'A' | 'u' => {
                self.arg()?;
                let stretchy = if kind == 'a' { "false" } else { "true" };
                self.leaf("mo", Some(("stretchy", stretchy)), text);
                let (tag, attr) = if kind == 'u' {
                    ("munder", ("accentunder", "true"))
                } else {
                    ("mover", ("accent", "true"))
                };
                self.wrap(start, tag, Some(attr));
                return Ok(false);
            }
            'r' => {
                let attr = match text {
                    "B" => Some(("linethickness", "0")),
                    "T" => Some(("displaystyle", "false")),
                    "D" => Some(("displaystyle", "true")),
                    _ => None,
                };
                self.arg()?;
                self.arg()?;
                self.wrap(start, "mfrac", attr);
                if text == "B" {
                    self.out.insert(start, mo('('));
                    self.leaf("mo", None, ")");
                    self.wrap(start, "mrow", None);
                }
                return Ok(false);
            }
            'q' => {
                self.skip_ws();
                if self.peek() == Some('[') {
                    self.i += 1;
                    if self.seq(true)? != 1 {
                        self.wrap(start, "mrow", None);
                    }
                    self.expect(']')?;
                    let base = self.out.len();
                    self.arg()?;
                    // The index is written first but goes second.
                    self.move_to_end(start, base);
                    self.wrap(start, "mroot", None);
                } else {
                    self.arg()?;
                    self.wrap(start, "msqrt", None);
                }
                return Ok(false);
            }
            't' => {
                // Non-breaking spaces: edge spaces (`\text{ if }`) would collapse.
                let t = self.raw_group()?;
                let t = t.chars().map(|c| if c == ' ' { '\u{a0}' } else { c });
                let t: String = t.collect();
                self.leaf("mtext", None, &t);
                return Ok(false);
            }
            'm' | 'b' | 'd' => {
                let at = self.i;
                let t: String = self.raw_group()?.split_whitespace().collect();
                if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric()) {
                    // Math inside (`\mathbf{\hat x}`): drawn without the font change.
                    self.i = at;
                    self.arg()?;
                } else if kind == 'm' {
                    self.leaf("mi", Some(("mathvariant", "normal")), &t);
                } else {
                    for c in t.chars() {
                        let tag = if c.is_ascii_digit() { "mn" } else { "mi" };
                        let c = styled(c, kind == 'd');
                        self.leaf(tag, None, c.encode_utf8(&mut [0; 4]));
                    }
                    if t.chars().count() > 1 {
                        self.wrap(start, "mrow", None);
                    }
                }
                return Ok(false);
            }
            'g' => return self.arg().map(|_| false),
            'l' => {
                self.delimiter()?;
                self.seq(false)?;
                if self.cmd_name() != "right" {
                    return Err(Unsupported);
                }
                self.i += 6;
                self.delimiter()?;
                self.wrap(start, "mrow", None);
                return Ok(false);
            }
            'e' => return self.environment().map(|_| false),
            _ => return Err(Unsupported),
        };
        self.leaf(tag, attr, text);
        Ok(kind == 'O' || kind == 'F')
    }

    /// The delimiter after `\left` or `\right` (`.` is none).
    fn delimiter(&mut self) -> Res<()> {
        self.skip_ws();
        let name = self.cmd_name();
        match self.peek() {
            Some('.') => {}
            Some('\\') => match lookup(SYMBOLS, name).and_then(|v| v.strip_prefix('o')) {
                Some(text) => {
                    self.i += name.len();
                    self.leaf("mo", None, text);
                }
                _ => return Err(Unsupported),
            },
            Some(c @ ('(' | ')' | '[' | ']' | '|' | '/')) => {
                self.leaf("mo", None, c.encode_utf8(&mut [0; 4]));
            }
            _ => return Err(Unsupported),
        }
        self.i += 1;
        Ok(())
    }

    /// `\begin{name}…\end{name}` (the `\begin` already read).
    fn environment(&mut self) -> Res<()> {
        let name = self.raw_group()?;
        // Delimiters on each side ('_': none), then `l` (cases: left-aligned), `r`
        // (aligned: right and left) or `a` (array: a column spec follows).
        let mut info = lookup(ENVIRONMENTS, name).ok_or(Unsupported)?.chars();
        let (open, close) = (info.next().unwrap_or('_'), info.next().unwrap_or('_'));
        let align = match info.next() {
            Some('l') => "left",
            Some('r') => "right left",
            Some(_) => {
                self.raw_group()?; // the column spec
                ""
            }
            None => "",
        };
        let start = self.out.len();
        self.table(Some(align))?;
        if self.cmd_name() != "end" {
            return Err(Unsupported);
        }
        self.i += 4;
        if self.raw_group()? != name {
            return Err(Unsupported);
        }
        if open != '_' {
            self.out.insert(start, mo(open));
            if close != '_' {
                self.leaf("mo", None, close.encode_utf8(&mut [0; 4]));
            }
            self.wrap(start, "mrow", None);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(tex: &str) -> String {
        to_mathml(tex, false).map_or_else(|| "(source)".into(), |t| markup(&t))
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
            // Unicode typed directly, and text with accents.
            (
                "π r^2",
                "<math><mi>π</mi><msup><mi>r</mi><mn>2</mn></msup></math>",
            ),
            ("\\text{é à}", "<math><mtext>é\u{a0}à</mtext></math>"),
            // A sup written before the sub still goes second; a root's index goes second.
            (
                "x^2_1",
                "<math><msubsup><mi>x</mi><mn>1</mn><mn>2</mn></msubsup></math>",
            ),
            (
                "\\sqrt[n]{x+1}",
                "<math><mroot><mrow><mi>x</mi><mo>+</mo><mn>1</mn></mrow><mi>n</mi></mroot></math>",
            ),
            (
                "\\binom{n}{k}",
                "<math><mrow><mo>(</mo><mfrac linethickness=\"0\"><mi>n</mi><mi>k</mi></mfrac><mo>)</mo></mrow></math>",
            ),
            (
                "\\mathbb{N} \\subset \\mathbf{v2}",
                "<math><mi>ℕ</mi><mo>⊂</mo><mrow><mi>𝐯</mi><mn>𝟐</mn></mrow></math>",
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
            to_mathml("E = mc^2", true).map(|t| markup(&t)).as_deref(),
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
            "\\é",
            "\\text{é",
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
