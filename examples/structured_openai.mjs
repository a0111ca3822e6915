// A receipt read into JSON that follows a schema, through `smolvlm serve` and the official OpenAI
// client for Node. The server constrains decoding (README "Structured outputs"), so the answer
// parses and validates whatever the model: only a max_tokens cut (finish_reason "length") leaves
// an incomplete prefix, and that is checked before parsing.
//
//   smolvlm serve -m MODEL_DIR --port 8080 &
//   npm install openai
//   node examples/structured_openai.mjs receipt.jpg [http://localhost:8080/v1] [--stream]
import { readFileSync } from "node:fs";
import OpenAI from "openai";

const args = process.argv.slice(2);
const stream = args.includes("--stream");
const [picture = "examples/shapes.jpg", baseURL = "http://localhost:8080/v1"] = args.filter(
  (a) => a !== "--stream",
);

const receipt = {
  type: "object",
  properties: {
    merchant: { type: "string", maxLength: 40 },
    date: { type: "string", format: "date" },
    currency: { enum: ["EUR", "USD", "GBP"] },
    items: {
      type: "array",
      minItems: 1,
      maxItems: 20,
      items: {
        type: "object",
        properties: {
          name: { type: "string", maxLength: 40 },
          qty: { type: "integer", minimum: 1, maximum: 99 },
          price: { type: "number" },
        },
        required: ["name", "price"],
        additionalProperties: false,
      },
    },
    total: { type: "number" },
  },
  required: ["merchant", "currency", "items", "total"],
  additionalProperties: false,
};

const mime = /\.png$/i.test(picture) ? "image/png" : "image/jpeg";
const url = `data:${mime};base64,${readFileSync(picture).toString("base64")}`;
// The server needs no key; the client insists on one.
const client = new OpenAI({ baseURL, apiKey: process.env.OPENAI_API_KEY ?? "none" });
const request = {
  model: "smolvlm",
  messages: [
    {
      role: "user",
      content: [
        { type: "image_url", image_url: { url } },
        { type: "text", text: "Read this receipt." },
      ],
    },
  ],
  response_format: {
    type: "json_schema",
    json_schema: { name: "receipt", strict: true, schema: receipt },
  },
  max_tokens: 500,
  temperature: 0,
};

let text = "";
let finish = null;
if (stream) {
  for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    text += choice.delta?.content ?? "";
    finish = choice.finish_reason ?? finish;
  }
} else {
  const completion = await client.chat.completions.create(request);
  text = completion.choices[0].message.content;
  finish = completion.choices[0].finish_reason;
}

if (finish === "length") {
  console.error(`cut short by max_tokens (an incomplete prefix): ${text}`);
  process.exit(1);
}
const data = JSON.parse(text);
console.log(JSON.stringify(data, null, 2));
console.log(`${data.merchant}: ${data.items.length} item(s), total ${data.total} ${data.currency}`);
