// tests/data/tokenizers/oracle.cjs - writes the expected token ids of the tokenizer tests with
// Hugging Face's own tokenizers, two implementations of them, which must agree id for id:
// `tokenizers` (the Rust library's official Node binding) and `@huggingface/tokenizers`
// (pure JavaScript). Our code never writes these files.
//
//   npm install --prefix DIR tokenizers @huggingface/tokenizers   (outside the repository)
//   node oracle.cjs DIR TOKENIZER.json TEXT_FILE OUT [--cases] [--prefer-native]
//
// OUT gets the ids of TEXT_FILE's text, space-separated on one line, without BOS (encoded
// with add_special_tokens false; special tokens written in the text are matched, as
// `run tokenize` does). With --cases the file is cases separated by "\n---8<---\n", and OUT
// gets one line of ids per case. Where the two disagree the script fails, unless given
// --prefer-native: then it writes the Rust library's ids (what transformers uses) and says
// where they differ (tests/data/README.md lists the one text this was needed for, and why).
const fs = require("fs");
const path = require("path");
const [dir, tokenizerPath, textPath, outPath, ...flags] = process.argv.slice(2);
const mode = flags.includes("--cases") ? "--cases" : "", preferNative = flags.includes("--prefer-native");
const need = (name) => require(require.resolve(name, { paths: [path.resolve(dir)] }));
const native = need("tokenizers").Tokenizer.fromFile(tokenizerPath);
const { Tokenizer: JsTokenizer } = need("@huggingface/tokenizers");
const json = JSON.parse(fs.readFileSync(tokenizerPath, "utf8"));
const js = new JsTokenizer(json, {});

(async () => {
  const text = fs.readFileSync(textPath, "utf8");
  const texts = mode === "--cases" ? text.split("\n---8<---\n") : [text];
  const lines = [];
  for (const [i, t] of texts.entries()) {
    const a = (await native.encode(t, null, { addSpecialTokens: false })).getIds();
    const b = js.encode(t, { add_special_tokens: false }).ids;
    if (a.length !== b.length || a.some((x, k) => x !== b[k])) {
      const at = a.findIndex((x, k) => x !== b[k]);
      const where = `${textPath} case ${i}: the two implementations disagree from id ${at} on`;
      if (!preferNative) {
        console.error(`${where}\n  tokenizers:              ${a.slice(at, at + 12)}\n  @huggingface/tokenizers: ${b.slice(at, at + 12)}`);
        process.exit(1);
      }
      const differing = a.length === b.length ? a.filter((x, k) => x !== b[k]).length : "(lengths differ)";
      console.log(`${where} (${differing} ids differ): writing the ids of tokenizers (--prefer-native)`);
    }
    lines.push(a.join(" "));
  }
  fs.writeFileSync(outPath, lines.join("\n") + "\n");
  console.log(`${outPath}: ${texts.length} text(s), ${lines.reduce((n, l) => n + (l ? l.split(" ").length : 0), 0)} ids`);
})();
