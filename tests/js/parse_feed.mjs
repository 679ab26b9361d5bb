// Reads an RSS document on stdin and prints podcast-partytime's parseFeed() result as JSON.
// Used by tests/test_feeds_parsers.py. Exit status 1 (and "null") when partytime rejects the feed.
process.env.PARTYTIME_LOG ??= "silent"; // partytime logs with pino to stdout; keep stdout JSON only

const { parseFeed } = (await import("podcast-partytime")).default;

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const feed = parseFeed(Buffer.concat(chunks).toString("utf8"));

process.stdout.write(JSON.stringify(feed) + "\n");
process.exitCode = feed === null ? 1 : 0;
