// A weak link for one browser, made with the kernel's own traffic control
// (`tc`, root only): every page talks to the server over this machine's
// loopback, so an htb class on `lo` that catches the UDP datagrams to one
// page's ICE port limits that page's downlink, and nobody else's.
//
// The class queues at most 50 packets (a home router's buffer, about 1.6 s
// at 300 kbit/s) and drops the rest, as a real bottleneck does.
//
// Random loss comes from nftables (`numgen random`): this kernel has no
// netem and no tc actions, but nf_tables is built in.

import { execFileSync } from 'node:child_process';
import { until } from './wait.mjs';

/** @param {string[]} args */
const tc = (args) => execFileSync('tc', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/**
 * The two ends of `p`'s connection to the server (its selected ICE
 * candidate pair): transport protocol and port on the page's side and the
 * server's.
 * @param {import('./browsers.mjs').Participant} p
 * @returns {Promise<{local: {protocol: string, port: number}, remote: {protocol: string, port: number}}>}
 */
export function selectedPair(p) {
  return p.evaluate(async () => {
    const stats = await /** @type {any} */ (window).aconfi.pc.getStats();
    /** @type {any} */
    let pair;
    /** @type {any[]} */
    const pairs = [];
    // The transport names its selected pair (the standard way); a browser
    // that does not flags the pair itself.
    stats.forEach((/** @type {any} */ s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
      if (s.type === 'candidate-pair') pairs.push(s);
    });
    pair ??= pairs.find((s) => s.selected) ?? pairs.find((s) => s.nominated && s.state === 'succeeded');
    if (!pair) throw new Error(`no selected candidate pair among ${JSON.stringify(pairs.map((s) => [s.state, s.nominated]))}`);
    const end = (/** @type {string} */ id) => {
      const c = stats.get(id);
      return { protocol: c?.protocol, port: Number(c?.port) };
    };
    return { local: end(pair.localCandidateId), remote: end(pair.remoteCandidateId) };
  });
}

/**
 * The local UDP port of `p`'s connection to the server.
 * @param {import('./browsers.mjs').Participant} p
 * @returns {Promise<number>}
 */
export async function mediaPort(p) {
  // A browser may first select a TCP pair that answered before a UDP one,
  // and move to UDP when that succeeds: wait for it to settle there.
  /** @type {{protocol: string, port: number}|undefined} */
  let local;
  await until(async () => {
    ({ local } = await selectedPair(p));
    return local.protocol === 'udp';
  }, `${p}: media over UDP, not TCP`, 30000);
  return /** @type {{port: number}} */ (local).port;
}

/**
 * Limits what reaches UDP `port` on this machine to `kbit` kbit/s, IPv4 and
 * IPv6. Returns what lifts the limit again (also safe to call twice).
 * @param {number} port @param {number} kbit
 * @returns {{lift: () => void, dropped: () => number}}
 */
export function limitDownlink(port, kbit) {
  try { tc(['qdisc', 'del', 'dev', 'lo', 'root']); } catch { /* none yet */ }
  tc(['qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb']);
  tc(['class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:1', 'htb', 'rate', `${kbit}kbit`, 'ceil', `${kbit}kbit`]);
  tc(['qdisc', 'add', 'dev', 'lo', 'parent', '1:1', 'handle', '10:', 'pfifo', 'limit', '50']);
  const p = String(port);
  tc(['filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32',
    'match', 'ip', 'protocol', '17', '0xff', 'match', 'ip', 'dport', p, '0xffff', 'flowid', '1:1']);
  tc(['filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ipv6', 'prio', '2', 'u32',
    'match', 'ip6', 'protocol', '17', '0xff', 'match', 'ip6', 'dport', p, '0xffff', 'flowid', '1:1']);
  let lifted = false;
  return {
    lift() {
      if (lifted) return;
      lifted = true;
      tc(['qdisc', 'del', 'dev', 'lo', 'root']);
    },
    /** Packets the limit dropped so far (it really bit). */
    dropped() {
      const m = tc(['-s', 'qdisc', 'show', 'dev', 'lo']).match(/qdisc pfifo 10:[\s\S]*?dropped (\d+)/);
      return m ? Number(m[1]) : 0;
    },
  };
}

/** @param {string[]} args */
const nft = (args) => execFileSync('nft', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
/**
 * An nftables table `table` whose input chain holds `rules` (each ending in
 * `counter drop`), replacing one left by an earlier run. Returns what
 * deletes it (also safe to call twice) and how many packets its rules
 * dropped.
 * @param {string} table @param {string[][]} rules
 * @returns {{lift: () => void, dropped: () => number}}
 */
function dropRules(table, rules) {
  try { nft(['delete', 'table', 'inet', table]); } catch { /* none yet */ }
  nft(['add', 'table', 'inet', table]);
  nft(['add', 'chain', 'inet', table, 'input', '{ type filter hook input priority 0; }']);
  for (const rule of rules) nft(['add', 'rule', 'inet', table, 'input', ...rule]);
  let lifted = false;
  return {
    lift() {
      if (lifted) return;
      lifted = true;
      nft(['delete', 'table', 'inet', table]);
    },
    dropped() {
      if (lifted) return 0;
      return [...nft(['list', 'table', 'inet', table]).matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    },
  };
}

/**
 * Drops `percent` % of the UDP datagrams to and from local `port` at
 * random, both directions, IPv4 and IPv6; a later call changes the rate.
 * Returns what lifts it and how many it dropped.
 * @param {number} port @param {number} percent
 * @returns {{lift: () => void, dropped: () => number}}
 */
export function lossyLink(port, percent) {
  return dropRules('aconfi_test_loss', ['dport', 'sport'].map((dir) =>
    ['udp', dir, String(port), 'numgen', 'random', 'mod', '100', '<', String(percent), 'counter', 'drop']));
}

/**
 * A firewall that drops every UDP datagram to local `port`, IPv4 and IPv6,
 * as a network that allows only TCP does. Returns what lifts it and how
 * many it dropped.
 * @param {number} port
 * @returns {{lift: () => void, dropped: () => number}}
 */
export function blockUdp(port) {
  return dropRules('aconfi_test_udp_block', [['udp', 'dport', String(port), 'counter', 'drop']]);
}
