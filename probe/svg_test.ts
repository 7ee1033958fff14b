import { assertEquals } from "@scaling-vicreg/backend/testing";
import { escapeXml, percent, svgOpen } from "./svg.ts";

Deno.test("escapeXml() replaces the five XML special characters and nothing else", () => {
  assertEquals(
    escapeXml(`<a href="x">Tom & Jerry's</a> é`),
    "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&apos;s&lt;/a&gt; é",
  );
  assertEquals(escapeXml("plain text 1.5 %"), "plain text 1.5 %");
});

Deno.test("percent() writes a fraction in percent with the given decimals", () => {
  assertEquals(percent(0.1234, 2), "12.34");
  assertEquals(percent(0.5, 1), "50.0");
  assertEquals(percent(1, 0), "100");
  assertEquals(percent(0.00049, 1), "0.0");
});

Deno.test("svgOpen() gives the tag with and without a viewBox", () => {
  assertEquals(
    svgOpen(420, 280, { viewBox: true }),
    '<svg xmlns="http://www.w3.org/2000/svg" width="420" height="280" viewBox="0 0 420 280" font-family="sans-serif" font-size="12">',
  );
  assertEquals(
    svgOpen(480, 300, { fontSize: 11 }),
    '<svg xmlns="http://www.w3.org/2000/svg" width="480" height="300" font-family="sans-serif" font-size="11">',
  );
});
