//! A small Markdown subset for assistant replies, parsed to a tree.
//!
//! Models answer in Markdown; the widget shows it formatted but never as HTML: the tree
//! holds only text, and the renderer turns it into elements and text nodes. Raw HTML such
//! as `<script>` therefore stays literal text, and links are kept only for `http`, `https`
//! and `mailto`. Supported: ATX headings, paragraphs (single newlines are line breaks, as
//! chat users expect), bullet and numbered lists (nested by indentation), block quotes,
//! fenced code blocks, GFM tables, rules, and inline code, `**strong**`, `*emphasis*`,
//! `~~strike~~`, `[links](https://…)`, `<https://…>` and bare `https://…` URLs, and LaTeX
//! math (converted by [`crate::math`]): `$$…$$` or `\[…\]` on their own lines is a display
//! block; in a paragraph those are display math and `\(…\)` or `$…$` inline math. A `$`
//! opens math only when not followed by a space and closes it only when not preceded by a
//! space nor followed by a digit, so money (`$5 and $10`) stays text; `\$` is a dollar.
//! It is forgiving rather than exact CommonMark: a reply that is still streaming (an
//! unclosed fence or `**`) renders sensibly at every step.
//!
//! Why not `pulldown-cmark`, the parser everyone audits: measured on 2026-12-07, version
//! 0.13.6 with default features off (tables, strikethrough and math on), its parser linked
//! into this widget and driven over every reply took the on-open download from 152,972 to
//! 206,357 B brotli (+53,385 B, +35 %; the wasm alone 147,413 to 200,798 B), a third over the
//! 150 KiB budget on its own, before any of this parser could be removed. It carries full
//! CommonMark (the HTML entity names, link reference definitions, raw HTML as events the
//! widget would have to drop), most of which a chat reply never uses. (`scripts/size-report`
//! after `trunk build --release`, with and without the library.)

/// A block-level element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// `#` … `######`.
    Heading(u8, Vec<Inline>),
    Paragraph(Vec<Inline>),
    /// A fenced code block; `lang` is the info string's first word (may be empty).
    Code {
        lang: String,
        text: String,
    },
    List {
        ordered: bool,
        start: u32,
        items: Vec<Vec<Block>>,
    },
    Quote(Vec<Block>),
    Table {
        align: Vec<Align>,
        head: Vec<Vec<Inline>>,
        rows: Vec<Vec<Vec<Inline>>>,
    },
    Rule,
    /// Display math: the LaTeX between `$$…$$` or `\[…\]`, trimmed.
    Math(String),
}

/// Column alignment of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    None,
    Left,
    Center,
    Right,
}

/// An inline element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    Text(String),
    Code(String),
    Strong(Vec<Inline>),
    Em(Vec<Inline>),
    Del(Vec<Inline>),
    /// `href` is always `http:`, `https:` or `mailto:`.
    Link {
        href: String,
        children: Vec<Inline>,
    },
    Break,
    /// LaTeX math, without its delimiters.
    Math {
        tex: String,
        display: bool,
    },
}

/// How many block quotes and lists may nest. A reply of 10,000 `>` would otherwise
/// recurse 10,000 deep (a stack overflow in the parser, then in the renderer, is a crash),
/// and nothing deeper than this is readable in a chat bubble anyway: deeper markers
/// stay literal text.
pub const MAX_NESTING: usize = 8;

/// How many lines a display-math block may span: the search for its closer stops there
/// (and at a blank line, which TeX does not allow in math either).
const MAX_MATH_LINES: usize = 100;

/// Parses a whole reply.
pub fn parse(src: &str) -> Vec<Block> {
    let lines: Vec<String> = src.lines().map(expand_leading_tabs).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    parse_blocks(&refs, 0)
}

/// A reply that is still arriving, parsed for a renderer that keeps what is final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Streamed {
    pub blocks: Vec<Block>,
    /// The first `done` blocks are final: whatever arrives later, the text's first
    /// `done_bytes` bytes parse to them, and the rest parses on its own from there.
    pub done: usize,
    pub done_bytes: usize,
}

/// Parses a reply that is still streaming and says which of its blocks are final, so the
/// widget renders those once and parses only the rest again on the next delta: a delta
/// then costs the same at the end of a long reply as at its start.
///
/// A top-level block is final once a blank line and a complete line that starts the next
/// block follow it, if that line is unindented and not a list item (which could continue
/// a list above): a paragraph, quote or table ends at a blank line, a list at an
/// unindented line after one, and the parser itself confirms that no fence is still open.
pub fn parse_streaming(src: &str) -> Streamed {
    let lines: Vec<String> = src.lines().map(expand_leading_tabs).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let mut starts = Vec::new();
    let blocks = parse_blocks_from(&refs, 0, &mut starts);
    // Where each line starts, and whether its newline has arrived.
    let mut at = 0;
    let line_ends: Vec<(usize, bool)> = src
        .split_inclusive('\n')
        .map(|l| {
            let start = at;
            at += l.len();
            (start, l.ends_with('\n'))
        })
        .collect();
    let cut = (1..blocks.len()).rev().find_map(|j| {
        let l = starts[j];
        let (offset, complete) = *line_ends.get(l)?;
        let t = refs[l];
        (complete && is_blank(refs[l - 1]) && indent(t) == 0 && list_marker(t).is_none())
            .then_some((j, offset))
    });
    let (done, done_bytes) = cut.unwrap_or((0, 0));
    Streamed {
        blocks,
        done,
        done_bytes,
    }
}

/// Returns `href` when it is safe to link to (http, https or mailto), else `None`.
pub fn safe_href(url: &str) -> Option<&str> {
    let url = url.trim();
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    let scheme_len = if lower.starts_with("https://") {
        8
    } else if lower.starts_with("http://") || lower.starts_with("mailto:") {
        7
    } else {
        return None;
    };
    if url.len() <= scheme_len || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some(url)
}

fn expand_leading_tabs(line: &str) -> String {
    let body = line.trim_start_matches([' ', '\t']);
    let lead = &line[..line.len() - body.len()];
    if !lead.contains('\t') {
        return line.to_owned();
    }
    let mut out = String::new();
    for c in lead.chars() {
        if c == '\t' {
            let pad = 4 - out.len() % 4;
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.push(' ');
        }
    }
    out.push_str(body);
    out
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// Removes up to `n` leading spaces.
fn dedent(line: &str, n: usize) -> &str {
    &line[indent(line).min(n)..]
}

/// `(fence char, fence length, info)` for an opening code fence.
fn fence_open(t: &str) -> Option<(char, usize, &str)> {
    let c = t.chars().next()?;
    if c != '`' && c != '~' {
        return None;
    }
    let n = t.len() - t.trim_start_matches(c).len();
    if n < 3 {
        return None;
    }
    let info = t[n..].trim();
    if c == '`' && info.contains('`') {
        return None;
    }
    Some((c, n, info))
}

fn is_fence_close(t: &str, c: char, n: usize) -> bool {
    let t = t.trim();
    let run = t.len() - t.trim_start_matches(c).len();
    run >= n && run == t.len()
}

fn heading(t: &str) -> Option<(u8, &str)> {
    let level = t.len() - t.trim_start_matches('#').len();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &t[level..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    let text = rest.trim();
    // Optional closing sequence: "## Title ##".
    let stripped = text.trim_end_matches('#');
    let text = if stripped.is_empty() || stripped.ends_with(' ') {
        stripped.trim_end()
    } else {
        text
    };
    Some((level as u8, text))
}

fn is_rule(t: &str) -> bool {
    let t = t.trim();
    let Some(c) = t.chars().next() else {
        return false;
    };
    matches!(c, '-' | '*' | '_')
        && t.chars().filter(|&x| x == c).count() >= 3
        && t.chars().all(|x| x == c || x == ' ')
}

/// A list marker at the start of `t`: `(ordered, number, width of marker plus spacing)`.
fn list_marker(t: &str) -> Option<(bool, u32, usize)> {
    let bytes = t.as_bytes();
    let (ordered, number, marker_len) = match bytes.first()? {
        b'-' | b'*' | b'+' => (false, 1, 1),
        b'0'..=b'9' => {
            let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits > 9 || !matches!(bytes.get(digits), Some(b'.' | b')')) {
                return None;
            }
            (true, t[..digits].parse().ok()?, digits + 1)
        }
        _ => return None,
    };
    let rest = &t[marker_len..];
    if rest.is_empty() {
        return Some((ordered, number, marker_len + 1));
    }
    let spaces = rest.len() - rest.trim_start_matches(' ').len();
    if spaces == 0 {
        return None;
    }
    // Five or more spaces would be indented code in CommonMark; count one.
    let spaces = if spaces > 4 || spaces == rest.len() {
        1
    } else {
        spaces
    };
    Some((ordered, number, marker_len + spaces))
}

fn is_table_delimiter(line: &str) -> Option<Vec<Align>> {
    let t = line.trim();
    if !t.contains('-') || !t.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ')) {
        return None;
    }
    if !t.contains('|') {
        return None;
    }
    let cells = split_row(t);
    let mut align = Vec::with_capacity(cells.len());
    for cell in cells {
        let c = cell.trim();
        let left = c.starts_with(':');
        let right = c.ends_with(':');
        let dashes = c.trim_matches(':');
        if dashes.is_empty() || !dashes.chars().all(|x| x == '-') {
            return None;
        }
        align.push(match (left, right) {
            (true, true) => Align::Center,
            (true, false) => Align::Left,
            (false, true) => Align::Right,
            (false, false) => Align::None,
        });
    }
    Some(align)
}

/// Splits a table row on unescaped `|`, ignoring the optional outer pipes.
fn split_row(line: &str) -> Vec<String> {
    let t = line.trim();
    let t = t.strip_prefix('|').unwrap_or(t);
    let t = if t.ends_with('|') && !t.ends_with("\\|") {
        &t[..t.len() - 1]
    } else {
        t
    };
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                cell.push('|');
            }
            '|' => cells.push(std::mem::take(&mut cell)),
            _ => cell.push(c),
        }
    }
    cells.push(cell);
    cells.into_iter().map(|c| c.trim().to_owned()).collect()
}

/// True when `lines[i]` starts a table (a row followed by a delimiter row).
fn table_starts(lines: &[&str], i: usize) -> bool {
    lines[i].contains('|')
        && lines
            .get(i + 1)
            .and_then(|l| is_table_delimiter(l))
            .is_some_and(|a| a.len() == split_row(lines[i]).len())
}

/// A display-math block starting at `lines[i]` (`$$` or `\[` opening the line, its closer
/// ending a line): its LaTeX and the index after its last line. An unclosed one, as while
/// it streams, is not a block: the paragraph shows its source until the closer arrives.
fn display_math(lines: &[&str], i: usize) -> Option<(String, usize)> {
    let first = lines[i].trim();
    let close = match first.get(..2)? {
        "$$" => "$$",
        "\\[" => "\\]",
        _ => return None,
    };
    let mut tex = String::new();
    for (j, line) in lines.iter().enumerate().skip(i).take(MAX_MATH_LINES) {
        let line = if j == i { &first[2..] } else { line.trim() };
        if j > i && line.is_empty() {
            return None;
        }
        tex.push_str(line);
        if let Some(body) = tex.strip_suffix(close) {
            // A closer before the end (`$$a$$ and $$b$$`): math inside a paragraph.
            let inner = body.as_bytes().windows(2).any(|w| w == close.as_bytes());
            let body = body.trim();
            return (!inner && !body.is_empty()).then(|| (body.to_owned(), j + 1));
        }
        tex.push('\n');
    }
    None
}

/// True when a line would start a block other than a paragraph (so it ends one); at
/// `depth` [`MAX_NESTING`] quote and list markers are text and start nothing.
fn interrupts_paragraph(lines: &[&str], i: usize, depth: usize) -> bool {
    let t = lines[i].trim_start();
    let nests = depth < MAX_NESTING;
    fence_open(t).is_some()
        || heading(t).is_some()
        || (nests && t.starts_with('>'))
        || is_rule(t)
        || (nests
            && list_marker(t).is_some_and(|(ordered, n, _)| {
                let rest = t.split_once(' ').map_or("", |(_, r)| r);
                !rest.trim().is_empty() && (!ordered || n == 1)
            }))
        || table_starts(lines, i)
        || display_math(lines, i).is_some()
}

/// The blocks of `lines`, which sit inside `depth` quotes or list items.
fn parse_blocks(lines: &[&str], depth: usize) -> Vec<Block> {
    parse_blocks_from(lines, depth, &mut Vec::new())
}

/// [`parse_blocks`], also recording the line each block starts at in `starts`.
fn parse_blocks_from(lines: &[&str], depth: usize, starts: &mut Vec<usize>) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if is_blank(line) {
            i += 1;
            continue;
        }
        let ind = indent(line);
        let t = line.trim_start();
        let nests = depth < MAX_NESTING;
        starts.push(i);

        if let Some((c, n, info)) = fence_open(t) {
            let mut text = String::new();
            i += 1;
            while i < lines.len() && !is_fence_close(lines[i], c, n) {
                text.push_str(dedent(lines[i], ind));
                text.push('\n');
                i += 1;
            }
            i += 1; // the closing fence (or past the end)
            text.pop();
            let lang = info.split_whitespace().next().unwrap_or("").to_owned();
            blocks.push(Block::Code { lang, text });
            continue;
        }
        if let Some((tex, next)) = display_math(lines, i) {
            blocks.push(Block::Math(tex));
            i = next;
            continue;
        }
        if let Some((level, text)) = heading(t) {
            blocks.push(Block::Heading(level, parse_inline(text)));
            i += 1;
            continue;
        }
        if is_rule(t) {
            blocks.push(Block::Rule);
            i += 1;
            continue;
        }
        if nests && t.starts_with('>') {
            let mut inner = Vec::new();
            while i < lines.len() && lines[i].trim_start().starts_with('>') {
                let rest = &lines[i].trim_start()[1..];
                inner.push(rest.strip_prefix(' ').unwrap_or(rest));
                i += 1;
            }
            blocks.push(Block::Quote(parse_blocks(&inner, depth + 1)));
            continue;
        }
        if nests && list_marker(t).is_some() {
            let (block, next) = parse_list(lines, i, depth);
            blocks.push(block);
            i = next;
            continue;
        }
        if table_starts(lines, i) {
            let align = is_table_delimiter(lines[i + 1]).unwrap_or_default();
            let cols = align.len();
            let row = |l: &str| {
                let mut cells: Vec<Vec<Inline>> =
                    split_row(l).iter().map(|c| parse_inline(c)).collect();
                cells.resize(cols, Vec::new());
                cells
            };
            let head = row(lines[i]);
            i += 2;
            let mut rows = Vec::new();
            while i < lines.len() && !is_blank(lines[i]) && lines[i].contains('|') {
                rows.push(row(lines[i]));
                i += 1;
            }
            blocks.push(Block::Table { align, head, rows });
            continue;
        }
        // Paragraph: up to a blank line or the start of another block.
        let mut text = String::from(t);
        i += 1;
        while i < lines.len() && !is_blank(lines[i]) && !interrupts_paragraph(lines, i, depth) {
            text.push('\n');
            text.push_str(lines[i].trim_start());
            i += 1;
        }
        blocks.push(Block::Paragraph(parse_inline(&text)));
    }
    blocks
}

/// Parses the list starting at `lines[start]`; returns it and the index after it.
fn parse_list(lines: &[&str], start: usize, depth: usize) -> (Block, usize) {
    let base = indent(lines[start]);
    let Some((ordered, number, _)) = list_marker(lines[start].trim_start()) else {
        return (Block::Rule, start + 1);
    };
    let mut items: Vec<Vec<Block>> = Vec::new();
    let mut i = start;
    loop {
        // `lines[i]` is an item's marker line.
        let ind = indent(lines[i]);
        let t = lines[i].trim_start();
        let Some((_, _, width)) = list_marker(t) else {
            break;
        };
        let content_indent = ind + width;
        let mut item: Vec<&str> = vec![t.get(width..).unwrap_or("")];
        i += 1;
        let mut prev_blank = false;
        while i < lines.len() {
            let l = lines[i];
            if is_blank(l) {
                prev_blank = true;
                item.push("");
                i += 1;
                continue;
            }
            let li = indent(l);
            let lt = l.trim_start();
            if li >= content_indent {
                item.push(dedent(l, content_indent));
            } else if let Some((o, _, _)) = list_marker(lt) {
                if li > base {
                    // A nested list indented less than the content: still belongs here.
                    item.push(dedent(l, li.min(content_indent)));
                } else if o == ordered {
                    break; // next item of this list
                } else {
                    break; // a different kind of list starts
                }
            } else if !prev_blank && !interrupts_paragraph(lines, i, depth) {
                item.push(lt); // lazy paragraph continuation
            } else {
                break;
            }
            prev_blank = false;
            i += 1;
        }
        while item.last().is_some_and(|l| l.is_empty()) {
            item.pop();
        }
        items.push(parse_blocks(&item, depth + 1));
        // Continue only with a sibling marker of the same kind at this list's level.
        let mut j = i;
        while j < lines.len() && is_blank(lines[j]) {
            j += 1;
        }
        let sibling = j < lines.len()
            && indent(lines[j]) <= base + 3
            && indent(lines[j]) + 1 >= base.max(1)
            && list_marker(lines[j].trim_start()).is_some_and(|(o, _, _)| o == ordered)
            && !is_rule(lines[j].trim_start());
        if !sibling {
            break;
        }
        i = j;
    }
    let block = Block::List {
        ordered,
        start: number,
        items,
    };
    (block, i)
}

/// Parses inline Markdown. Newlines become [`Inline::Break`].
pub fn parse_inline(src: &str) -> Vec<Inline> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    inline_into(&chars, &mut out, 0);
    merge_text(out)
}

fn push_text(out: &mut Vec<Inline>, s: &str) {
    if let Some(Inline::Text(t)) = out.last_mut() {
        t.push_str(s);
    } else if !s.is_empty() {
        out.push(Inline::Text(s.to_owned()));
    }
}

fn merge_text(v: Vec<Inline>) -> Vec<Inline> {
    let mut out: Vec<Inline> = Vec::with_capacity(v.len());
    for i in v {
        match i {
            Inline::Text(s) => push_text(&mut out, &s),
            other => out.push(other),
        }
    }
    out
}

fn run_len(c: &[char], i: usize, ch: char) -> usize {
    c[i..].iter().take_while(|&&x| x == ch).count()
}

/// Finds a closing delimiter `delim` (a run of exactly `n` of `ch`) after `from`.
fn find_closer(c: &[char], from: usize, ch: char, n: usize) -> Option<usize> {
    let mut i = from;
    while i < c.len() {
        match c[i] {
            '\\' => i += 2,
            '`' => {
                // Skip code spans: delimiters inside them do not count.
                let r = run_len(c, i, '`');
                i = find_code_end(c, i + r, r).map_or(i + r, |e| e + r);
            }
            x if x == ch => {
                let r = run_len(c, i, ch);
                let before_ok = i > from && !c[i - 1].is_whitespace();
                if r == n
                    && before_ok
                    && (ch != '_' || c.get(i + r).is_none_or(|x| !x.is_alphanumeric()))
                {
                    return Some(i);
                }
                i += r;
            }
            _ => i += 1,
        }
    }
    None
}

fn find_code_end(c: &[char], from: usize, n: usize) -> Option<usize> {
    let mut i = from;
    while i < c.len() {
        if c[i] == '`' {
            let r = run_len(c, i, '`');
            if r == n {
                return Some(i);
            }
            i += r;
        } else {
            i += 1;
        }
    }
    None
}

/// For each `open` in `c`, the index of its matching `close`, counting nested pairs (a
/// `(` is never matched across a line break).
fn bracket_pairs(c: &[char], open: char, close: char) -> Vec<Option<usize>> {
    let mut opened = Vec::new();
    let mut pairs = vec![None; c.len()];
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '\\' => i += 1,
            x if x == open => opened.push(i),
            x if x == close => {
                if let Some(o) = opened.pop() {
                    pairs[o] = Some(i);
                }
            }
            '\n' if open == '(' => opened.clear(),
            _ => {}
        }
        i += 1;
    }
    pairs
}

fn s(c: &[char]) -> String {
    c.iter().collect()
}

/// Inline markup inside `depth` emphasis or link spans; at [`MAX_NESTING`] further
/// markup is text.
fn inline_into(c: &[char], out: &mut Vec<Inline>, depth: usize) {
    let nests = depth < MAX_NESTING;
    // Delimiters already found to have no closer in the rest of `c`: asking again for
    // every later opener would make `**a *` repeated 10,000 times quadratic.
    let mut unclosed: Vec<(char, usize)> = Vec::new();
    // Each `[`'s matching `]` and each `(`'s `)`, found in one pass when first needed:
    // searching from every one of 10,000 unclosed ones would be quadratic.
    let mut brackets: Option<Vec<Option<usize>>> = None;
    let mut parens: Option<Vec<Option<usize>>> = None;
    // Math closers (`\)`, `\]`, `$$`) already found missing from the rest of `c`.
    let mut no_closer = [false; 3];
    let mut text = String::new();
    let flush = |text: &mut String, out: &mut Vec<Inline>| {
        if !text.is_empty() {
            push_text(out, text);
            text.clear();
        }
    };
    let mut i = 0;
    while i < c.len() {
        let ch = c[i];
        if (ch == '$' || ch == '\\')
            && let Some((math, next)) = math_at(c, i, &mut no_closer)
        {
            flush(&mut text, out);
            out.push(math);
            i = next;
            continue;
        }
        match ch {
            '\\' if c.get(i + 1).is_some_and(|n| n.is_ascii_punctuation()) => {
                text.push(c[i + 1]);
                i += 2;
            }
            '\n' => {
                while text.ends_with(' ') || text.ends_with('\\') {
                    text.pop();
                }
                flush(&mut text, out);
                out.push(Inline::Break);
                i += 1;
            }
            '`' => {
                let n = run_len(c, i, '`');
                if let Some(end) = find_code_end(c, i + n, n) {
                    let mut code = s(&c[i + n..end]).replace('\n', " ");
                    if code.len() > 2 && code.starts_with(' ') && code.ends_with(' ') {
                        code = code[1..code.len() - 1].to_owned();
                    }
                    flush(&mut text, out);
                    out.push(Inline::Code(code));
                    i = end + n;
                } else {
                    text.extend(&c[i..i + n]);
                    i += n;
                }
            }
            '*' | '_' | '~' => {
                let n = run_len(c, i, ch);
                let prev_alnum = i > 0 && c[i - 1].is_alphanumeric();
                let next_ok = c.get(i + n).is_some_and(|x| !x.is_whitespace());
                let can_open =
                    nests && next_ok && !(ch == '_' && prev_alnum) && (ch != '~' || n == 2);
                let want = if ch == '~' { 2 } else { n.min(3) };
                let found = (can_open && !unclosed.contains(&(ch, want)))
                    .then(|| {
                        let e = find_closer(c, i + want, ch, want);
                        if e.is_none() {
                            unclosed.push((ch, want));
                        }
                        e
                    })
                    .flatten()
                    .filter(|&e| e > i + want);
                match (found, want) {
                    (Some(end), _) if n == want => {
                        let mut inner = Vec::new();
                        inline_into(&c[i + want..end], &mut inner, depth + 1);
                        let inner = merge_text(inner);
                        flush(&mut text, out);
                        out.push(match (ch, want) {
                            ('~', _) => Inline::Del(inner),
                            (_, 1) => Inline::Em(inner),
                            (_, 2) => Inline::Strong(inner),
                            _ => Inline::Strong(vec![Inline::Em(inner)]),
                        });
                        i = end + want;
                    }
                    _ => {
                        text.extend(&c[i..i + n]);
                        i += n;
                    }
                }
            }
            '[' => {
                let pairs = brackets.get_or_insert_with(|| bracket_pairs(c, '[', ']'));
                let link = nests.then(|| pairs[i]).flatten().and_then(|close| {
                    if c.get(close + 1) != Some(&'(') {
                        return None;
                    }
                    let end = parens.get_or_insert_with(|| bracket_pairs(c, '(', ')'))[close + 1]?;
                    Some((close, end))
                });
                if let Some((close, end)) = link {
                    let target = s(&c[close + 2..end]);
                    let url = target.split_whitespace().next().unwrap_or("");
                    let url = url
                        .strip_prefix('<')
                        .and_then(|u| u.strip_suffix('>'))
                        .unwrap_or(url);
                    let mut children = Vec::new();
                    inline_into(&c[i + 1..close], &mut children, depth + 1);
                    let children = merge_text(children);
                    flush(&mut text, out);
                    match safe_href(url) {
                        Some(href) => out.push(Inline::Link {
                            href: href.to_owned(),
                            children,
                        }),
                        // Unsafe or relative target: keep the label as plain content.
                        None => out.extend(children),
                    }
                    i = end + 1;
                } else {
                    text.push('[');
                    i += 1;
                }
            }
            '<' => {
                let end = c[i + 1..]
                    .iter()
                    .position(|&x| x == '>' || x.is_whitespace() || x == '<')
                    .map(|p| i + 1 + p)
                    .filter(|&e| c[e] == '>');
                let url = end.map(|e| s(&c[i + 1..e]));
                match (end, url.as_deref().and_then(safe_href)) {
                    (Some(e), Some(href)) => {
                        flush(&mut text, out);
                        out.push(Inline::Link {
                            href: href.to_owned(),
                            children: vec![Inline::Text(href.to_owned())],
                        });
                        i = e + 1;
                    }
                    _ => {
                        text.push('<');
                        i += 1;
                    }
                }
            }
            'h' | 'H' if (i == 0 || !c[i - 1].is_alphanumeric()) && starts_url(&c[i..]) => {
                let mut e = i;
                while e < c.len() && !c[e].is_whitespace() && c[e] != '<' {
                    e += 1;
                }
                // Trailing punctuation belongs to the sentence, not the URL.
                while e > i {
                    let last = c[e - 1];
                    let unbalanced_paren = last == ')'
                        && c[i..e].iter().filter(|&&x| x == '(').count()
                            < c[i..e].iter().filter(|&&x| x == ')').count();
                    if matches!(
                        last,
                        '.' | ',' | ':' | ';' | '!' | '?' | '"' | '\'' | '*' | '_'
                    ) || unbalanced_paren
                    {
                        e -= 1;
                    } else {
                        break;
                    }
                }
                let url = s(&c[i..e]);
                if let Some(href) = safe_href(&url) {
                    flush(&mut text, out);
                    out.push(Inline::Link {
                        href: href.to_owned(),
                        children: vec![Inline::Text(href.to_owned())],
                    });
                    i = e;
                } else {
                    text.push(ch);
                    i += 1;
                }
            }
            _ => {
                text.push(ch);
                i += 1;
            }
        }
    }
    flush(&mut text, out);
}

/// The math span opening at `c[i]` (a `$` or `\`) and the index after it, if it is one.
/// Each search stops at the first closer, so the scans of many openers do not overlap.
fn math_at(c: &[char], i: usize, no_closer: &mut [bool; 3]) -> Option<(Inline, usize)> {
    let (close, display, kind) = match (c[i], c.get(i + 1)) {
        ('\\', Some('(')) => (')', false, 0),
        ('\\', Some('[')) => (']', true, 1),
        ('$', Some('$')) => ('$', true, 2),
        ('$', Some(&n)) if !n.is_whitespace() => {
            // `$…$`: on one line, the closer not after a space nor before a digit.
            let mut k = i + 1;
            while k < c.len() && c[k] != '$' && c[k] != '\n' {
                k += if c[k] == '\\' { 2 } else { 1 };
            }
            let closes = c.get(k) == Some(&'$')
                && !c[k - 1].is_whitespace()
                && !c.get(k + 1).is_some_and(char::is_ascii_digit);
            return closes.then(|| {
                let tex = s(&c[i + 1..k]);
                (
                    Inline::Math {
                        tex,
                        display: false,
                    },
                    k + 1,
                )
            });
        }
        _ => return None,
    };
    if no_closer[kind] {
        return None;
    }
    let open = c[i];
    let Some(end) = (i + 2..c.len().saturating_sub(1)).find(|&k| c[k] == open && c[k + 1] == close)
    else {
        no_closer[kind] = true;
        return None;
    };
    let tex = s(&c[i + 2..end]).trim().to_owned();
    (!tex.is_empty()).then_some((Inline::Math { tex, display }, end + 2))
}

fn starts_url(c: &[char]) -> bool {
    let head: String = c.iter().take(8).collect::<String>().to_ascii_lowercase();
    (head.starts_with("https://") && c.len() > 8) || (head.starts_with("http://") && c.len() > 7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Block::{Heading, List, Paragraph, Quote, Rule, Table};
    use Inline::*;

    fn t(s: &str) -> Inline {
        Text(s.into())
    }

    fn p(s: &str) -> Block {
        Paragraph(vec![t(s)])
    }

    #[test]
    fn raw_html_stays_literal_text() {
        assert_eq!(
            parse("<script>alert(1)</script>"),
            vec![p("<script>alert(1)</script>")]
        );
        assert_eq!(
            parse_inline("a <img src=x onerror=alert(1)> b"),
            vec![t("a <img src=x onerror=alert(1)> b")]
        );
    }

    #[test]
    fn only_http_https_and_mailto_become_links() {
        assert_eq!(
            parse_inline("[docs](https://example.com/a_b)"),
            vec![Link {
                href: "https://example.com/a_b".into(),
                children: vec![t("docs")]
            }]
        );
        assert_eq!(
            parse_inline("[mail](mailto:t@example.com)"),
            vec![Link {
                href: "mailto:t@example.com".into(),
                children: vec![t("mail")]
            }]
        );
        for bad in [
            "[x](javascript:alert(1))",
            "[x](JaVaScRiPt:alert(1))",
            "[x](data:text/html,hi)",
            "[x](/relative)",
            "[x](vbscript:msgbox)",
        ] {
            assert_eq!(parse_inline(bad), vec![t("x")], "{bad}");
        }
        assert_eq!(
            parse_inline("<javascript:alert(1)>"),
            vec![t("<javascript:alert(1)>")]
        );
        assert_eq!(safe_href(" https://x.y "), Some("https://x.y"));
        assert_eq!(safe_href("https://"), None);
        assert_eq!(safe_href("https://a b"), None);
    }

    #[test]
    fn bare_and_angle_urls_are_linked_without_trailing_punctuation() {
        let link = |u: &str| Link {
            href: u.into(),
            children: vec![t(u)],
        };
        assert_eq!(
            parse_inline("See https://example.com/x."),
            vec![t("See "), link("https://example.com/x"), t(".")]
        );
        assert_eq!(
            parse_inline("(see https://en.wikipedia.org/wiki/Rust_(language))"),
            vec![
                t("(see "),
                link("https://en.wikipedia.org/wiki/Rust_(language)"),
                t(")")
            ]
        );
        assert_eq!(
            parse_inline("<https://a.example>"),
            vec![link("https://a.example")]
        );
        assert_eq!(parse_inline("xhttps://a.b"), vec![t("xhttps://a.b")]);
    }

    #[test]
    fn emphasis_strong_strike_and_code() {
        assert_eq!(
            parse_inline("a **b** *c* ~~d~~ `e*f*`"),
            vec![
                t("a "),
                Strong(vec![t("b")]),
                t(" "),
                Em(vec![t("c")]),
                t(" "),
                Del(vec![t("d")]),
                t(" "),
                Code("e*f*".into())
            ]
        );
        assert_eq!(
            parse_inline("***both***"),
            vec![Strong(vec![Em(vec![t("both")])])]
        );
        assert_eq!(
            parse_inline("**bold *and em* inside**"),
            vec![Strong(vec![
                t("bold "),
                Em(vec![t("and em")]),
                t(" inside")
            ])]
        );
        assert_eq!(parse_inline("snake_case_name"), vec![t("snake_case_name")]);
        assert_eq!(parse_inline("__init__"), vec![Strong(vec![t("init")])]);
        assert_eq!(parse_inline("2 * 3 * 4"), vec![t("2 * 3 * 4")]);
        assert_eq!(parse_inline("``a ` b``"), vec![Code("a ` b".into())]);
        assert_eq!(parse_inline("\\*not em\\*"), vec![t("*not em*")]);
    }

    fn math(tex: &str, display: bool) -> Inline {
        Math {
            tex: tex.into(),
            display,
        }
    }

    #[test]
    fn dollar_and_backslash_delimiters_make_math_but_money_stays_text() {
        assert_eq!(parse_inline("$x$"), vec![math("x", false)]);
        assert_eq!(
            parse_inline("so $x^2 + 1$ grows"),
            vec![t("so "), math("x^2 + 1", false), t(" grows")]
        );
        assert_eq!(
            parse_inline("area \\(\\pi r^2\\) here"),
            vec![t("area "), math("\\pi r^2", false), t(" here")]
        );
        assert_eq!(
            parse_inline("see $$E = mc^2$$ and \\[a+b\\]"),
            vec![
                t("see "),
                math("E = mc^2", true),
                t(" and "),
                math("a+b", true)
            ]
        );
        for money in [
            "$5 and $10",
            "costs $5.",
            "between $3 and $4 each",
            "from $5-$10 a day",
            "$ 5 and 6 $",
            "a lone $",
        ] {
            assert_eq!(parse_inline(money), vec![t(money)], "{money}");
        }
        // Money before math: the money `$` finds a space before the next `$` and stays text.
        assert_eq!(
            parse_inline("$5 buys $x$ apples"),
            vec![t("$5 buys "), math("x", false), t(" apples")]
        );
        // An escaped dollar is a dollar, and code spans keep their dollars.
        assert_eq!(parse_inline("\\$x\\$"), vec![t("$x$")]);
        assert_eq!(
            parse_inline("`$x$` and `\\(y\\)`"),
            vec![Code("$x$".into()), t(" and "), Code("\\(y\\)".into())]
        );
        // Unclosed delimiters are text (the escape still applies to `\\(`).
        assert_eq!(parse_inline("\\(x"), vec![t("(x")]);
        assert_eq!(parse_inline("$$x"), vec![t("$$x")]);
        // Not across a line break for `$`.
        assert_eq!(parse_inline("$a\nb$"), vec![t("$a"), Break, t("b$")]);
    }

    #[test]
    fn display_math_on_its_own_lines_is_a_block() {
        assert_eq!(
            parse("Solve:\n$$\nx = \\frac{1}{2}\n$$\nDone."),
            vec![
                p("Solve:"),
                Block::Math("x = \\frac{1}{2}".into()),
                p("Done.")
            ]
        );
        assert_eq!(
            parse("\\[ a^2 + b^2 = c^2 \\]"),
            vec![Block::Math("a^2 + b^2 = c^2".into())]
        );
        assert_eq!(
            parse("$$\\begin{aligned}\na &= b \\\\\n&= c\n\\end{aligned}$$"),
            vec![Block::Math(
                "\\begin{aligned}\na &= b \\\\\n&= c\n\\end{aligned}".into()
            )]
        );
        // Inside a list item.
        assert_eq!(
            parse("- $$x$$"),
            vec![List {
                ordered: false,
                start: 1,
                items: vec![vec![Block::Math("x".into())]]
            }]
        );
        // Text after the closer: display math inside a paragraph.
        assert_eq!(
            parse("$$x$$ is it"),
            vec![Paragraph(vec![math("x", true), t(" is it")])]
        );
        // Not closed before a blank line: the source as text.
        assert_eq!(
            parse("$$\nx\n\nmore"),
            vec![Paragraph(vec![t("$$"), Break, t("x")]), p("more")]
        );
        // Fenced code keeps its dollars.
        assert_eq!(
            parse("```\n$$x$$\n```"),
            vec![Block::Code {
                lang: String::new(),
                text: "$$x$$".into()
            }]
        );
    }

    #[test]
    fn a_display_block_still_open_while_streaming_is_not_final() {
        let s = parse_streaming("Intro\n\n$$\nx^2\n");
        assert_eq!(s.done, 1);
        assert_eq!(s.blocks[1], Paragraph(vec![t("$$"), Break, t("x^2")]));
        let s = parse_streaming("Intro\n\n$$\nx^2\n$$\n\nnext\n");
        assert_eq!(s.blocks[1], Block::Math("x^2".into()));
        assert_eq!(s.done, 2);
        stream(
            "a $x$ b\n\n$$\n\\frac{1}{2}\n$$\n\n\\[y\\]\n\nmoney $5 and $10\n\n$$\nopen",
            1,
            1,
        );
    }

    #[test]
    fn many_unclosed_math_openers_stay_text_quickly() {
        for src in [
            "$a ".repeat(10_000),
            "\\(".repeat(10_000),
            "$$".repeat(10_001),
            "\\[".repeat(10_000),
            "$$\n".repeat(10_000),
        ] {
            let blocks = parse(&src);
            assert!(!blocks.is_empty());
        }
    }

    #[test]
    fn unfinished_markup_while_streaming_is_plain_text() {
        assert_eq!(parse_inline("**bold so"), vec![t("**bold so")]);
        assert_eq!(parse_inline("`code"), vec![t("`code")]);
        assert_eq!(parse_inline("[label](http"), vec![t("[label](http")]);
        assert_eq!(
            parse("```rust\nfn main() {"),
            vec![Block::Code {
                lang: "rust".into(),
                text: "fn main() {".into()
            }]
        );
    }

    #[test]
    fn headings_paragraphs_breaks_and_rules() {
        assert_eq!(
            parse("# Title\n\nline one\nline two\n\n---\n### Sub ###"),
            vec![
                Heading(1, vec![t("Title")]),
                Paragraph(vec![t("line one"), Break, t("line two")]),
                Rule,
                Heading(3, vec![t("Sub")]),
            ]
        );
        assert_eq!(parse("#hashtag"), vec![p("#hashtag")]);
        assert_eq!(parse("####### seven"), vec![p("####### seven")]);
    }

    #[test]
    fn fenced_code_keeps_its_text_verbatim() {
        assert_eq!(
            parse("before\n```python\nif a < b:\n    print(\"<b>\")\n```\nafter"),
            vec![
                p("before"),
                Block::Code {
                    lang: "python".into(),
                    text: "if a < b:\n    print(\"<b>\")".into()
                },
                p("after"),
            ]
        );
        assert_eq!(
            parse("~~~\n**x**\n~~~"),
            vec![Block::Code {
                lang: String::new(),
                text: "**x**".into()
            }]
        );
    }

    #[test]
    fn bullet_and_numbered_lists_with_nesting() {
        let md = "Steps:\n1. First\n2. Second\n   - sub a\n   - sub b\n3. Third\n\n- x\n- y";
        assert_eq!(
            parse(md),
            vec![
                p("Steps:"),
                List {
                    ordered: true,
                    start: 1,
                    items: vec![
                        vec![p("First")],
                        vec![
                            p("Second"),
                            List {
                                ordered: false,
                                start: 1,
                                items: vec![vec![p("sub a")], vec![p("sub b")]]
                            }
                        ],
                        vec![p("Third")],
                    ]
                },
                List {
                    ordered: false,
                    start: 1,
                    items: vec![vec![p("x")], vec![p("y")]]
                }
            ]
        );
        // Two-space nesting under a numbered item, and a start number.
        assert_eq!(
            parse("3. a\n  - b\n4. c"),
            vec![List {
                ordered: true,
                start: 3,
                items: vec![
                    vec![
                        p("a"),
                        List {
                            ordered: false,
                            start: 1,
                            items: vec![vec![p("b")]]
                        }
                    ],
                    vec![p("c")]
                ]
            }]
        );
        // Loose list (blank lines between items) stays one list.
        assert_eq!(
            parse("- a\n\n- b"),
            vec![List {
                ordered: false,
                start: 1,
                items: vec![vec![p("a")], vec![p("b")]]
            }]
        );
    }

    #[test]
    fn typical_model_output() {
        let md = "**Summary**\n1. **Light**: plants use it.\n2) Water\n\n* star item\n\nBorn in\n1984. Then";
        assert_eq!(
            parse(md),
            vec![
                Paragraph(vec![Strong(vec![t("Summary")])]),
                List {
                    ordered: true,
                    start: 1,
                    items: vec![
                        vec![Paragraph(vec![
                            Strong(vec![t("Light")]),
                            t(": plants use it.")
                        ])],
                        vec![p("Water")],
                    ]
                },
                List {
                    ordered: false,
                    start: 1,
                    items: vec![vec![p("star item")]]
                },
                Paragraph(vec![t("Born in"), Break, t("1984. Then")]),
            ]
        );
    }

    #[test]
    fn tables_with_alignment() {
        let md = "| Name | Score |\n|:-----|------:|\n| Ann | **9** |\n| Bo \\| Cy | 7 |\nafter";
        assert_eq!(
            parse(md),
            vec![
                Table {
                    align: vec![Align::Left, Align::Right],
                    head: vec![vec![t("Name")], vec![t("Score")]],
                    rows: vec![
                        vec![vec![t("Ann")], vec![Strong(vec![t("9")])]],
                        vec![vec![t("Bo | Cy")], vec![t("7")]],
                    ]
                },
                p("after")
            ]
        );
        // A pipe without a delimiter row is just text.
        assert_eq!(parse("a | b"), vec![p("a | b")]);
    }

    #[test]
    fn block_quotes_nest_blocks() {
        assert_eq!(
            parse("> quoted\n> - item"),
            vec![Quote(vec![
                p("quoted"),
                List {
                    ordered: false,
                    start: 1,
                    items: vec![vec![p("item")]]
                }
            ])]
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in [
            "",
            "*",
            "**",
            "***",
            "_",
            "[",
            "[]",
            "[](",
            "`",
            "<",
            ">",
            "-",
            "1.",
            "|",
            "|-|",
            "| a |\n|-|",
            "```",
            "~~",
            "\\",
            "#",
            "\t- x",
            "1) a\n2) b",
            "*a **b* c**",
            "中文 **粗體** 和 `程式`",
            "- [ ] task",
            "> > deep",
        ] {
            let _ = parse(s);
        }
    }

    /// How deep quotes and lists nest in `blocks`.
    fn depth(blocks: &[Block]) -> usize {
        blocks
            .iter()
            .map(|b| match b {
                Quote(inner) => 1 + depth(inner),
                List { items, .. } => 1 + items.iter().map(|i| depth(i)).max().unwrap_or(0),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
    }

    /// The text of a block tree, in order.
    fn text_of(blocks: &[Block]) -> String {
        fn inl(is: &[Inline], out: &mut String) {
            for i in is {
                match i {
                    Text(s) | Code(s) => out.push_str(s),
                    Strong(c) | Em(c) | Del(c) | Link { children: c, .. } => inl(c, out),
                    Break => out.push('\n'),
                    Math { tex, .. } => out.push_str(tex),
                }
            }
        }
        let mut out = String::new();
        for b in blocks {
            match b {
                Paragraph(c) | Heading(_, c) => inl(c, &mut out),
                Quote(inner) => out.push_str(&text_of(inner)),
                List { items, .. } => items.iter().for_each(|i| out.push_str(&text_of(i))),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn ten_thousand_quote_markers_nest_only_so_deep_and_the_rest_is_text() {
        for src in [
            ">".repeat(10_000),
            "> ".repeat(10_000),
            format!("{}deep", "> ".repeat(10_000)),
            format!("{}\n", ">".repeat(10_000)).repeat(3),
        ] {
            let blocks = parse(&src);
            assert_eq!(depth(&blocks), MAX_NESTING, "{}", &src[..12]);
        }
        let blocks = parse(&format!("{}deep", "> ".repeat(10_000)));
        let text = text_of(&blocks);
        assert!(text.ends_with("deep"), "the words after the markers stay");
        assert!(
            text.starts_with(">"),
            "markers past the limit are shown as text"
        );
    }

    #[test]
    fn ten_thousand_nested_list_markers_nest_only_so_deep() {
        for src in [
            format!("{}item", "- ".repeat(10_000)),
            format!("{}item", "1. ".repeat(10_000)),
            format!("{}item", "* > ".repeat(5_000)),
            // One marker per line, each indented under the one before.
            (0..300)
                .map(|i| format!("{}- level {i}\n", "  ".repeat(i)))
                .collect::<String>(),
        ] {
            let blocks = parse(&src);
            assert_eq!(depth(&blocks), MAX_NESTING, "{}", &src[..12]);
        }
        // Markers alone are a rule.
        assert_eq!(parse(&"- ".repeat(10_000)), vec![Rule]);
        // Nothing is lost: the deepest levels are text.
        let text = text_of(&parse(
            &(0..50)
                .map(|i| format!("{}- level {i}\n", "  ".repeat(i)))
                .collect::<String>(),
        ));
        assert!(
            text.contains("level 0") && text.contains("level 49"),
            "{text}"
        );
    }

    /// The search from one bracket that [`bracket_pairs`] does for all at once.
    fn find_matching(c: &[char], from: usize, open: char, close: char) -> Option<usize> {
        let mut depth = 0usize;
        let mut i = from;
        while i < c.len() {
            match c[i] {
                '\\' => i += 1,
                x if x == open => depth += 1,
                x if x == close => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                '\n' if open == '(' => return None,
                _ => {}
            }
            i += 1;
        }
        None
    }

    #[test]
    fn bracket_pairs_agree_with_a_search_from_each_bracket() {
        for src in [
            "[a [b] c](x)",
            "[[[",
            "]][[]]",
            "[a\\]b] [c](d)",
            "\\[x] [y]",
            "[`]`]",
            "(a (b) c) ((",
            "(a\n) (b)",
            "((x)\n(y))",
        ] {
            let c: Vec<char> = src.chars().collect();
            for (open, close) in [('[', ']'), ('(', ')')] {
                let pairs = bracket_pairs(&c, open, close);
                for (i, &ch) in c.iter().enumerate() {
                    let escaped = i > 0 && c[i - 1] == '\\';
                    if ch == open && !escaped {
                        assert_eq!(pairs[i], find_matching(&c, i, open, close), "{src} at {i}");
                    }
                }
            }
        }
    }

    #[test]
    fn deeply_nested_inline_markup_is_bounded() {
        // Unclosed brackets and link targets stay text.
        for src in ["[".repeat(10_000), "[a](".repeat(5_000)] {
            assert_eq!(parse_inline(&src), vec![t(&src)]);
        }
        let nested =
            |open: &str, close: &str| format!("{}x{}", open.repeat(10_000), close.repeat(10_000));
        for src in [
            nested("[", "](https://a.example)"),
            nested("**a *", "* b**"),
            nested("~~", "~~"),
            "[".repeat(10_000),
            "*".repeat(10_000),
        ] {
            let inl = parse_inline(&src);
            fn d(is: &[Inline]) -> usize {
                is.iter()
                    .map(|i| match i {
                        Strong(c) | Em(c) | Del(c) | Link { children: c, .. } => 1 + d(c),
                        _ => 0,
                    })
                    .max()
                    .unwrap_or(0)
            }
            // A bare URL in the innermost text is still linked: a leaf, not a level.
            assert!(d(&inl) <= MAX_NESTING + 1, "{}", &src[..12]);
        }
    }

    /// Streams `doc` in pieces of `step` bytes as the widget does: final blocks are kept,
    /// only the rest is parsed again. Checks that what is shown equals a parse of everything
    /// received (after every `check`th delta and the last), and returns the longest text
    /// parsed again for one delta.
    fn stream(doc: &str, step: usize, check: usize) -> usize {
        let mut kept: Vec<Block> = Vec::new();
        let mut from = 0;
        let mut longest = 0;
        let mut end = 0;
        let mut deltas = 0;
        while end < doc.len() {
            deltas += 1;
            end = (end + step).min(doc.len());
            while !doc.is_char_boundary(end) {
                end += 1;
            }
            let received = &doc[..end];
            let tail = &received[from..];
            longest = longest.max(tail.len());
            let s = parse_streaming(tail);
            if deltas % check == 0 || end == doc.len() {
                let mut shown = kept.clone();
                shown.extend(s.blocks.iter().cloned());
                assert_eq!(shown, parse(received), "after {end} bytes of {doc:?}");
            }
            kept.extend(s.blocks[..s.done].iter().cloned());
            from += s.done_bytes;
        }
        longest
    }

    const MIXED: &str = "# Title\n\nIntro line one\nline two\n\n- a\n- b\n\n- loose c\n\n  more c\n\
        \n1. one\n   - nested\n\n2. two\n\nafter list\n\n```rust\nfn main() {\n\n    x\n}\n```\n\
        \n> quote\n> - item\n\n> second quote\n\n| A | B |\n|---|---|\n| 1 | 2 |\n\n---\n\
        \n- item with fence\n  ```\n\ncode at column 0\n```\n\nstill text?\n\npara\n|x|y|\n|-|-|\n\
        \n~~~\nopen fence to the end\n\nnever closed";

    #[test]
    fn streaming_keeps_final_blocks_and_shows_what_a_full_parse_shows() {
        for step in [1, 3, 10] {
            stream(MIXED, step, 1);
        }
        stream("a\n\n- x\n\n- y\n\nz\n\n1. n\n\n2. m\n\n* s\n\n+ t", 1, 1);
        stream("中文 **粗體**\n\n和 `程式`\n\n> 引用\n\n結束", 1, 1);
        stream("para\n\n    indented\n\nnext\r\n\r\nwindows\r\n", 1, 1);
    }

    #[test]
    fn a_streamed_delta_reparses_the_open_block_not_the_whole_reply() {
        let section = "## Step\n\nSome **explanation** of the step, with `code`.\n\n\
            - first point\n- second point\n\n```python\nprint('hi')\n```\n\n";
        let reply = section.repeat(20_000 / section.len() + 1);
        assert!(reply.len() > 20_000);
        let longest = stream(&reply, 10, 97);
        assert!(
            longest < 2 * section.len(),
            "a delta parsed {longest} of {} bytes again",
            reply.len()
        );
    }
}
