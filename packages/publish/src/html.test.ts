import { describe, expect, it } from "vitest";
import { html, raw } from "./index.js";

describe("html", () => {
  it("escapes every value unless it is raw() or another html result", () => {
    const prompt = `<script>alert("x")</script> & 'quotes'`;
    const out = html`<p title="${prompt}">${prompt}</p>${html`<b>${"<i>"}</b>`}${raw("<hr>")}${[html`<li>${"a<b"}</li>`, "<li>"]}${undefined}${false}`;
    expect(out.value).toBe(
      `<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quotes&#39;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quotes&#39;</p><b>&lt;i&gt;</b><hr><li>a&lt;b</li>&lt;li&gt;`,
    );
  });
});
