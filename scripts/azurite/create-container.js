// Creates a blob container in Azurite: `node create-container.js ENDPOINT ACCOUNT KEY CONTAINER`, where
// ENDPOINT is the account's URL (http://127.0.0.1:PORT/ACCOUNT). object_store cannot create containers,
// and Azurite ships no client, so this is the one request by hand: a PUT signed with SharedKey
// (https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key). An existing container
// is not an error, so `start` can run again.
"use strict";
const crypto = require("crypto");
const http = require("http");

const [endpoint, account, key, container] = process.argv.slice(2);
if (!container) {
  console.error("usage: node create-container.js ENDPOINT ACCOUNT KEY CONTAINER");
  process.exit(2);
}
const url = new URL(`${endpoint.replace(/\/$/, "")}/${container}?restype=container`);
const headers = {
  "x-ms-date": new Date().toUTCString(),
  "x-ms-version": "2021-08-06",
  "Content-Length": "0",
};
const canonicalHeaders = Object.keys(headers)
  .filter((h) => h.startsWith("x-ms-"))
  .sort()
  .map((h) => `${h}:${headers[h]}\n`)
  .join("");
// VERB, then eleven standard headers (all empty: a zero Content-Length is written as empty), then the
// x-ms- headers, then /ACCOUNT/PATH and the query parameters.
const stringToSign =
  "PUT\n" + "\n".repeat(11) + canonicalHeaders + `/${account}${url.pathname}\nrestype:container`;
const signature = crypto
  .createHmac("sha256", Buffer.from(key, "base64"))
  .update(stringToSign, "utf8")
  .digest("base64");
headers.Authorization = `SharedKey ${account}:${signature}`;

const request = http.request(url, { method: "PUT", headers }, (response) => {
  let body = "";
  response.on("data", (chunk) => (body += chunk));
  response.on("end", () => {
    if (response.statusCode === 201 || response.statusCode === 409) {
      process.exit(0);
    }
    console.error(`creating container ${container}: HTTP ${response.statusCode}: ${body}`);
    process.exit(1);
  });
});
request.on("error", (e) => {
  console.error(`creating container ${container}: ${e.message}`);
  process.exit(1);
});
request.end();
