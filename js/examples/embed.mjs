// Embed two texts with every layer, mean-pooled: node js/examples/embed.mjs bundles/all-MiniLM-L6-v2
import { load } from "layerwise";

const enc = await load(process.argv[2] ?? "bundles/all-MiniLM-L6-v2", { variant: "fused", threads: 2 });
const out = await enc.embed(["a text", "another"], { layers: "all", pool: "mean", combine: null, normalize: false });
console.log(enc.info.variant, enc.info.backend, out.dims, out.data.slice(0, 3));
const features = await enc.embed(["a text"], { layers: [-4, -3, -2, -1], combine: "concat" }); // [1, 1536]
const tokens = await enc.embedTokens(["a text"], { layers: -1 }); // [{dims: [1, 4, 384], data}]
console.log(features.dims, tokens[0].dims);
await enc.close();
