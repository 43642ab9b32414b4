// Drives EvoLink's published npm client, @evolinkai/evolink-media, unchanged, against a sandbox.
//
// The package has its two base URLs written into its code (https://api.evolink.ai in its config,
// https://files-api.evolink.ai in its file client) and calls the global fetch. This script wraps
// fetch so that requests to those two hosts go to the sandbox instead, then calls the package's
// own functions the way its tools do. It prints one JSON object of what each step saw.
//
// usage: node drive.mjs PACKAGE_DIR SANDBOX_URL CLIP_PATH
// env: EVOLINK_API_KEY (read by the package), PREP_NO_CREDITS_KEY (a key with no credits)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [packageDir, sandboxUrl, clipPath] = process.argv.slice(2);
const HOSTS = ['https://api.evolink.ai', 'https://files-api.evolink.ai'];
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = String(input instanceof Request ? input.url : input);
  const host = HOSTS.find((h) => url === h || url.startsWith(h + '/'));
  return realFetch(host ? sandboxUrl + url.slice(host.length) : input, init);
};

const dist = join(packageDir, 'node_modules', '@evolinkai', 'evolink-media', 'dist', 'core', 'src');
const load = (rel) => import(pathToFileURL(join(dist, rel)).href);
const files = await load('services/file-client.js');
const api = await load('services/api-client.js');
const { createConfig } = await load('config.js');
const { formatTaskResult } = await load('tools/check-task.js');
const config = createConfig('official');

// The test's own control calls (not EvoLink's API) go straight to the sandbox.
const control = (path, body) => realFetch(sandboxUrl + path, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
}).then((r) => r.json());

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
async function follow(taskId) {
  for (let i = 0; i < 600; i++) {
    const task = await api.queryTask(config, taskId);
    if (['completed', 'failed', 'cancelled'].includes(task.status)) return task;
    await sleep(50);
  }
  throw new Error(`task ${taskId} did not finish`);
}
async function caught(fn) {
  try {
    await fn();
    return null;
  } catch (error) {
    return { status: error.status ?? null, message: String(error.message) };
  }
}

const out = {};
const clip = readFileSync(clipPath);
const stream = await files.fileStreamUpload(clip, 'video/mp4', 'clip.mp4', 'conformance', 'streamed.mp4');
out.stream = stream.data;
const b64 = await files.fileBase64Upload(`data:video/mp4;base64,${clip.toString('base64')}`,
  'conformance-b64', 'inline.mp4');
out.base64 = b64.data;
out.quota = (await files.fileQuota()).data;
out.list = (await files.fileList(1, 20)).data;

const body = {
  model: 'wan2.6-reference-video', prompt: 'A person waves hello',
  video_urls: [out.stream.file_url], duration: 2,
};
const created = await api.apiRequest(config, { method: 'POST', path: '/v1/videos/generations', body });
out.created = created;
out.completed = await follow(created.id);
out.completedText = formatTaskResult(out.completed);

await control('/_sandbox/faults', { kind: 'fail_task', endpoint: 'generate' });
const doomed = await api.apiRequest(config, { method: 'POST', path: '/v1/videos/generations', body });
out.failed = await follow(doomed.id);
out.failedText = formatTaskResult(out.failed);

out.unknownTask = await caught(() => api.queryTask(config, 'task-unified-1757169743-zzzzzzzz'));
const key = process.env.EVOLINK_API_KEY;
process.env.EVOLINK_API_KEY = process.env.PREP_NO_CREDITS_KEY;
out.noCredits = await caught(() => api.apiRequest(config, {
  method: 'POST', path: '/v1/videos/generations', body,
}));
process.env.EVOLINK_API_KEY = 'sk-not-a-key';
out.badKey = await caught(() => files.fileQuota());
process.env.EVOLINK_API_KEY = key;
out.deleted = (await files.fileDelete(out.base64.file_id)).data;
out.listAfter = (await files.fileList(1, 20)).data;

process.stdout.write(JSON.stringify(out));
