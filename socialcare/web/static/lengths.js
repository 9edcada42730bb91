// Reply lengths as each platform counts them: the same rules as socialcare/cases/lengths.py.
"use strict";

const scLengths = (() => {
  const TLDS = "com|net|org|io|co|ly|me|app|dev|gl|gg|tv|uk|de|fr|es|it|nl|ca|au|in|jp|us|info|biz";
  const url = () => new RegExp(
    `https?://[^\\s<>"']+|(?<![@\\w.])(?:[\\w-]+\\.)+(?:${TLDS})\\b(?:/[^\\s<>"']*)?`, "giu");
  const pictograph = /\p{Extended_Pictographic}/u;
  const light = [[0, 4351], [8192, 8205], [8208, 8223], [8242, 8247]];
  const segmenter = typeof Intl !== "undefined" && Intl.Segmenter
    ? new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;

  function graphemes(text) {
    return segmenter ? Array.from(segmenter.segment(text), (s) => s.segment) : [...text];
  }

  function xWeight(cluster) {
    if (pictograph.test(cluster)) return 2;
    let total = 0;
    for (const ch of cluster) {
      const cp = ch.codePointAt(0);
      total += light.some(([lo, hi]) => cp >= lo && cp <= hi) ? 1 : 2;
    }
    return total;
  }

  function length(platform, text) {
    if (platform === "x" || platform === "twcs") {
      const normal = text.normalize("NFC");
      const links = normal.match(url()) || [];
      const rest = normal.replace(url(), "");
      return links.length * 23 + graphemes(rest).reduce((n, c) => n + xWeight(c), 0);
    }
    if (platform === "mastodon") {
      const plain = text.replace(/(@[\w.]+)@[\w.-]+\w/gu, "$1");
      const links = plain.match(url()) || [];
      return links.length * 23 + [...plain.replace(url(), "")].length;
    }
    if (platform === "bluesky") return graphemes(text).length;
    return [...text].length;
  }

  return { length };
})();
