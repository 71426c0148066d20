// How the web client finds its way in a cluster of nodes (web/js/protocol.js):
// which WebSocket a node's public URL gives, and where a client goes when
// the server it tried cannot be reached.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mayFollow, nextServer, nodeWsUrl } from '../../web/js/protocol.js';

test('a node URL gives its signaling WebSocket; anything else gives none', () => {
  assert.equal(nodeWsUrl('https://node-b.example'), 'wss://node-b.example/ws');
  assert.equal(nodeWsUrl('https://127.0.0.1:8444'), 'wss://127.0.0.1:8444/ws');
  assert.equal(nodeWsUrl('https://[::1]:8444'), 'wss://[::1]:8444/ws');
  for (const bad of ['http://node-b.example', 'https://node-b.example/path', 'https://evil.example#x',
    'javascript:alert(1)', 'https://a.example:8443@b.example', 'wss://node-b.example', '', 'https://']) {
    assert.equal(nodeWsUrl(bad), null, bad);
  }
});

test('after a failure the client goes round its own server and the other nodes in turn', () => {
  const own = 'wss://a.example/ws';
  const nodes = ['wss://b.example/ws', 'wss://c.example/ws'];
  // Its own server failed: the next node, then the one after, then back.
  assert.equal(nextServer(own, own, nodes), nodes[0]);
  assert.equal(nextServer(nodes[0], own, nodes), nodes[1]);
  assert.equal(nextServer(nodes[1], own, nodes), own);
  // A home node it was sent to and that is not in the list: its own first.
  assert.equal(nextServer('wss://d.example/ws', own, nodes), own);
  // Alone (no cluster, or nothing heard of others): its own server again.
  assert.equal(nextServer(own, own, []), own);
  // The list may name its own server too: no double turn.
  assert.equal(nextServer(own, own, [own, nodes[0]]), nodes[0]);
});

test('a moved is followed only to the page\'s own server or a node that server named', () => {
  const own = 'wss://a.example/ws';
  const trusted = ['wss://b.example/ws'];
  assert.equal(mayFollow('wss://b.example/ws', own, trusted), true);
  assert.equal(mayFollow(own, own, []), true);
  // A node we were sent to, naming a place our own server never did.
  assert.equal(mayFollow('wss://evil.example/ws', own, trusted), false);
  assert.equal(mayFollow('wss://b.example:444/ws', own, trusted), false, 'another port is another origin');
  assert.equal(mayFollow(null, own, trusted), false, 'no URL at all');
});
