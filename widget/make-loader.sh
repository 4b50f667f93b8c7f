#!/bin/sh
# Trunk post_build hook: writes $TRUNK_STAGING_DIR/widget.js from widget/loader.js, with
# the content-hashed glue and wasm names Trunk just produced and style/bubble.css inlined,
# and embed.js (the /embed page's module) from widget/embed.js with style/embed.css.
# Plain POSIX sh + sed/awk, so it runs wherever Trunk does.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
stage=${TRUNK_STAGING_DIR:?run by trunk (TRUNK_STAGING_DIR is not set)}

wasm=$(cd "$stage" && ls -- *_bg.wasm)
case $wasm in *"
"*|"") echo "make-loader: expected exactly one *_bg.wasm in $stage" >&2; exit 1 ;; esac
# The glue JS has its own hash: the one .js Trunk wrote (a previous widget.js aside).
glue=$(cd "$stage" && ls -- *.js | grep -vxE 'widget.js|embed.js' || true)
case $glue in *"
"*|"") echo "make-loader: expected exactly one glue .js in $stage" >&2; exit 1 ;; esac

# The CSS goes into a double-quoted JS string: one line, comments dropped, no spaces
# around { } ; , (never significant there in these files: no strings hold them).
flat_css() {
  out=$(tr '\n' ' ' < "$here/../style/$1" | sed -e 's:/\*[^*]*\*/::g' -e 's/  */ /g' -e 's/ *\([{};,]\) */\1/g' -e 's/^ //' -e 's/ $//')
  case $out in *'"'*|*'\'*|*'&'*) echo "make-loader: style/$1 must not contain \" \\ or &" >&2; exit 1 ;; esac
  printf '%s' "$out"
}
css=$(flat_css bubble.css)
embed_css=$(flat_css embed.css)

# Every host page downloads this file, so it is trimmed a little: the header comment,
# whole-line and end-of-statement (`; // ...`) comments and indentation go (loader.js keeps
# no code they could break: no string holds "; //").
{
  echo "/* classchat widget loader */"
  sed -e '1,/\*\//d' -e 's/^ *//' -e '/^\/\//d' -e 's|; // .*$|;|' -e '/^$/d' "$here/loader.js" |
    awk -v glue="$glue" -v wasm="$wasm" -v css="$css" '{
      gsub(/__CLASSCHAT_GLUE__/, glue); gsub(/__CLASSCHAT_WASM__/, wasm); gsub(/__CLASSCHAT_CSS__/, css); print
    }'
} > "$stage/widget.js"

{
  echo "/* classchat /embed page module */"
  sed -e '1,/\*\//d' -e 's/^ *//' -e '/^\/\//d' -e '/^$/d' "$here/embed.js" |
    awk -v glue="$glue" -v wasm="$wasm" -v css="$embed_css" '{
      gsub(/__CLASSCHAT_GLUE__/, glue); gsub(/__CLASSCHAT_WASM__/, wasm); gsub(/__CLASSCHAT_CSS__/, css); print
    }'
} > "$stage/embed.js"

if grep -q '__CLASSCHAT_' "$stage/widget.js" "$stage/embed.js"; then
  echo "make-loader: a placeholder was left in widget.js or embed.js" >&2; exit 1
fi
echo "make-loader: widget.js, embed.js -> $glue, $wasm"
