// One meeting session: the signaling WebSocket and the RTCPeerConnection,
// with automatic rejoin when the connection drops. No DOM here; the UI
// listens to the events this class dispatches.

import {
  CAMERA_LAYERS, CloseCode, E2EE_WRONG_KEY, FATAL_CLOSE_CODES, answerMsg, chatMsg, joinMsg, leaveMsg, mediaStateMsg,
  mayFollow, nextServer, nodeWsUrl, offerMsg, parseServerMsg, viewMsg,
} from './protocol.js';
import { KeySession } from './e2ee/session.js';
import { FrameTransforms, frameApi, peerConnectionOptions } from './frames.js';

/** @typedef {import('./protocol.js').ParticipantInfo} ParticipantInfo */
/** @typedef {import('./protocol.js').TrackInfo} TrackInfo */
/** @typedef {import('./protocol.js').RoomState} RoomState */
/** @typedef {import('./protocol.js').ServerMsg} ServerMsg */

/**
 * States: 'connecting' → ('password' | 'unprotected' | 'lobby')* → 'joined' ⇄
 * 'reconnecting'; 'left' and 'failed' are final. 'unprotected': we had a
 * password but the room asks for none — the user decides (`joinAnyway`).
 * @typedef {'connecting'|'password'|'unprotected'|'lobby'|'joined'|'reconnecting'|'left'|'failed'} MeetingState
 */

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 8000;
/** In a cluster, the first CLUSTER_TRIES reconnects wait at most CLUSTER_MAX_MS. */
const CLUSTER_TRIES = 10;
const CLUSTER_MAX_MS = 2000;
/** `moved`s followed at once in a row; more wait like any reconnect. */
const MAX_HOPS = 3;

/**
 * Events:
 * - `state`        detail: {state: MeetingState, code?: number, reason?: string}
 * - `participants` detail: {participants: Map<number, ParticipantInfo>}
 * - `track`        detail: {participant: number, kind: string, screen: boolean, track: MediaStreamTrack, mid: string}
 * - `left`         detail: {id: number}
 * - `self`         detail: {moderator: boolean, hand: boolean}  (our own role, hand, microphone or camera changed)
 * - `room`         detail: {room: RoomState}
 * - `password`     detail: {wrong: boolean, retryAfterMs?: number}
 * - `lobby`        detail: {waiting: Map<number, string|undefined>}  (moderators)
 * - `chat`         detail: {from: number, text: string, private: boolean}
 * - `media`        detail: {connected: true}  (audio/video connected; see `mediaFailing`)
 * - `e2ee`         detail: {}  (end-to-end encryption: who is verified, or the safety code, changed)
 * - `relocate`     detail: {origin} this page cannot reach the room's home node: open the meeting there
 * - `notice`       detail: {kind: 'muted_by'|'unmute_request'|'refused'|'joined'|'left', id?: number, message?: string, request?: string, name?: string}
 * - `speaker`      detail: {id: number|null}  (the active speaker changed; null: nobody)
 * - `paused`       detail: {mids: Set<string>}  (the videos the server pauses for want of bandwidth on our downlink)
 * - `live`         detail: {live: {state: string, reason?: string}|null}  (the room's live stream; null: none)
 */
export class Meeting extends EventTarget {
  /**
   * @param {{room: string, name?: string, stream: MediaStream, audioMuted: boolean, videoMuted: boolean, wsUrl?: string, secret?: Uint8Array}} opts
   *   `secret`: the link's end-to-end key; the meeting is then end-to-end
   *   encrypted (the browser must offer encoded-frame transforms)
   */
  constructor(opts) {
    super();
    this.room = opts.room;
    this.name = opts.name;
    /** The local camera/microphone stream (tracks may be added or removed). */
    this.stream = opts.stream;
    this.audioMuted = opts.audioMuted;
    this.videoMuted = opts.videoMuted;
    /** The page's own server's signaling WebSocket. */
    this.ownUrl = opts.wsUrl ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
    /** Where the next connection goes: the own server, or the room's home node in a cluster. */
    this.wsUrl = this.ownUrl;
    /** @type {string[]} the cluster's other nodes (WebSocket URLs), to come back through */
    this.nodes = [];
    /** @type {string[]} the nodes the page's own server named: where `moved` may send us */
    this.trusted = [];
    /** The WebSocket URL of the current connection. */
    this.connUrl = '';
    /** @type {string[]|null} the nodes this connection's server named, until it takes our join */
    this.heardNodes = null;
    /** This connection's `moved` named a node we may not follow. */
    this.refusedMove = false;
    /** `moved`s followed since the last join: a loop of them backs off. */
    this.hops = 0;
    /** @type {string|null} the node the last `moved` sent us to, until joined */
    this.movedTo = null;
    /** @type {MeetingState} */
    this.state = 'connecting';
    /** @type {number|null} our participant id */
    this.you = null;
    /** @type {Map<number, ParticipantInfo>} everyone else */
    this.participants = new Map();
    /** @type {number|null} who is speaking (possibly `you`), as the server says */
    this.speaker = null;
    /** @type {Set<string>} m-lines whose video the server pauses for want of bandwidth */
    this.paused = new Set();
    /** @type {Map<string, TrackInfo>} server m-lines by mid */
    this.tracks = new Map();
    /** The last `view` sent, to send only changes. */
    this.lastView = '';
    /** @type {WebSocket|null} */
    this.ws = null;
    /** @type {RTCPeerConnection|null} */
    this.pc = null;
    /** @type {RTCRtpTransceiver|null} */
    this.audioTx = null;
    /** @type {RTCRtpTransceiver|null} */
    this.videoTx = null;
    /** @type {RTCRtpTransceiver|null} sends only while sharing a screen */
    this.screenTx = null;
    this.screenSharing = false;
    this.attempt = 0;
    this.closing = false;
    /** @type {WeakMap<WebSocket, number>} why we closed a socket ourselves, if we did */
    this.closeReasons = new WeakMap();
    /** Media failed to connect and has not connected since. */
    this.mediaFailing = false;
    /** @type {string|undefined} the room password, once entered */
    this.password = undefined;
    /** @type {ReturnType<typeof setTimeout>|undefined} sends the held-back password again */
    this.passwordRetry = undefined;
    this.moderator = false;
    this.handRaised = false;
    /** @type {RoomState} */
    this.roomState = { locked: false, lobby: false, password: false };
    /** @type {Map<number, string|undefined>} people waiting in the lobby (moderators see them) */
    this.waiting = new Map();
    /** @type {{state: import('./protocol.js').StreamStatus, reason?: string}|null} the live stream, if any was seen */
    this.live = null;
    /** @type {string|null} why this server cannot stream live, if it cannot */
    this.streamUnavailable = null;
    /** @type {import('./frames.js').FrameApi|null} */
    this.frameApi = opts.secret ? frameApi() : null;
    /** @type {KeySession|null} the key exchange of an end-to-end encrypted meeting */
    this.e2ee = opts.secret ? new KeySession({ secret: opts.secret, room: this.room, sink: this.keySink() }) : null;
    /** @type {FrameTransforms|null} the frame worker of the current connection */
    this.frames = null;
  }

  /** Connects and joins; reconnects by itself until `leave()`. */
  start() {
    this.connect();
  }

  connect() {
    let ws;
    this.connUrl = this.wsUrl;
    this.refusedMove = false;
    this.heardNodes = null;
    try {
      ws = new WebSocket(this.wsUrl);
    } catch {
      // Firefox refuses at once a node this page may not connect to (one
      // that started after the page loaded: not in its policy).
      this.blocked(this.wsUrl);
      if (this.closing) return;
      // Not where we were sent: the next server we know of.
      this.wsUrl = nextServer(this.wsUrl, this.ownUrl, this.nodes);
      setTimeout(() => { if (!this.closing) this.connect(); }, RECONNECT_MIN_MS);
      return;
    }
    this.ws = ws;
    this.lastView = '';
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.sendJoin();
    };
    // Each connection handles its messages in order, on a chain of its
    // own: a handler of a closed connection may never settle (a closed
    // RTCPeerConnection leaves its pending promises unsettled), and must not
    // hold up the next connection's join.
    let chain = Promise.resolve();
    ws.onmessage = (ev) => {
      const msg = parseServerMsg(typeof ev.data === 'string' ? ev.data : '');
      // Messages of a connection that has since closed are stale.
      if (msg) chain = chain.then(() => (this.ws === ws ? this.handle(msg) : undefined)).catch((e) => this.fail(e, ws));
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.teardown();
      if (this.closing) return;
      // A code that ends the meeting for us wins; otherwise, when we closed
      // this socket ourselves, our reason counts, whatever code the closing
      // handshake ended with.
      const code = FATAL_CLOSE_CODES.has(ev.code) ? ev.code : (this.closeReasons.get(ws) ?? ev.code);
      if (FATAL_CLOSE_CODES.has(code)) {
        this.setState('failed', code, ev.reason);
        return;
      }
      if (code === CloseCode.MOVED && this.hops <= MAX_HOPS && !this.refusedMove) {
        // Sent on to the room's home node (wsUrl is set): go at once.
        if (this.state !== 'connecting') this.setState('reconnecting', code, ev.reason);
        this.connect();
        return;
      }
      // A server that could not be reached: try the next one we know of.
      if (!opened) this.wsUrl = nextServer(this.wsUrl, this.ownUrl, this.nodes);
      this.setState('reconnecting', code, ev.reason);
      // In a cluster the next node takes a dead node's meeting over within
      // seconds: the first tries come closer together there.
      const max = this.nodes.length > 0 && this.attempt < CLUSTER_TRIES ? CLUSTER_MAX_MS : RECONNECT_MAX_MS;
      const delay = Math.min(max, RECONNECT_MIN_MS * 2 ** this.attempt);
      this.attempt += 1;
      setTimeout(() => { if (!this.closing) this.connect(); }, delay);
    };
  }

  /** @param {number|null} id */
  setSpeaker(id) {
    if (this.speaker === id) return;
    this.speaker = id;
    this.dispatchEvent(new CustomEvent('speaker', { detail: { id } }));
  }

  sendJoin() {
    this.send(joinMsg(this.room, this.name, this.audioMuted, this.videoMuted, this.password, this.e2ee !== null));
  }

  /** Answers `password_required`. @param {string} password */
  submitPassword(password) {
    clearTimeout(this.passwordRetry);
    this.password = password;
    this.sendJoin();
  }

  /** Answers `password_not_required`: joins the room as it is now, without the password. */
  joinAnyway() {
    this.password = undefined;
    this.sendJoin();
  }

  /** @param {string} type @param {object} [fields] */
  request(type, fields = {}) {
    this.send({ type, ...fields });
  }

  /** Moderators: stream the meeting live to `url` (with its key). @param {string} url */
  startStream(url) {
    this.request('stream_start', { url });
  }

  /** Moderators: stop the live stream. */
  stopStream() {
    this.request('stream_stop');
  }

  /**
   * Sends a chat message; sealed first in an end-to-end encrypted meeting.
   * Rejects if it cannot be sealed (no verified key of the recipient yet).
   * @param {string} text @param {number} [to] private recipient
   */
  async sendChat(text, to) {
    if (!this.e2ee) {
      this.send(chatMsg(text, to));
      return;
    }
    this.send(chatMsg(await this.e2ee.sealChat(text, to), to, true));
  }

  /** What the key exchange asks of the meeting. @returns {import('./e2ee/session.js').Sink} */
  keySink() {
    return {
      send: (to, data) => this.send(to === null ? { type: 'e2ee', data } : { type: 'e2ee', to, data }),
      // The server lets only those whose link someone confirmed moderate.
      authentic: (id) => this.send({ type: 'e2ee_confirm', id }),
      sendKey: (kid, key) => this.frames?.setSendKey(kid, key),
      receiveKey: (_from, kid, key) => this.frames?.addReceiveKey(kid, key),
      forget: (pid) => this.frames?.forget(pid),
      change: () => this.dispatchEvent(new CustomEvent('e2ee', { detail: {} })),
      // Everyone here failed to verify our link: it is not this meeting's.
      mismatch: () => this.leave('failed', E2EE_WRONG_KEY),
    };
  }

  /** @param {boolean} raised */
  raiseHand(raised) {
    this.handRaised = raised;
    this.send({ type: 'raise_hand', raised });
  }

  /** @param {string} kind @param {object} [extra] */
  notice(kind, extra = {}) {
    this.dispatchEvent(new CustomEvent('notice', { detail: { kind, ...extra } }));
  }

  /**
   * Handling a message of `ws` failed.
   * @param {unknown} e @param {WebSocket} ws
   */
  fail(e, ws) {
    // A connection that closed meanwhile tore its peer connection down
    // under the handler: nothing is wrong, a new connection takes over.
    if (ws !== this.ws || ws.readyState !== WebSocket.OPEN) return;
    console.error('meeting error', e);
    // Let the reconnect logic start over with a fresh connection (a code
    // that is not fatal, unlike the server's MALFORMED).
    this.closeFor(CloseCode.INTERNAL_ERROR);
  }

  /**
   * @param {MeetingState} state
   * @param {number} [code]
   * @param {string} [reason]
   */
  setState(state, code, reason) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, code, reason } }));
  }

  /** Closes the WebSocket to start over, for `code`'s reason. @param {number} code */
  closeFor(code) {
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSING || ws.readyState === WebSocket.CLOSED) return;
    this.closeReasons.set(ws, code);
    ws.close(code);
  }

  /** @param {object} msg */
  send(msg) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  /**
   * Tells the server which received videos are on screen and how large,
   * when that changed: it sends nothing for hidden ones and no layer larger
   * than a tile shows.
   * @param {{mid: string, width: number, height: number, stage: boolean}[]} tiles
   */
  sendView(tiles) {
    const msg = viewMsg(tiles);
    const text = JSON.stringify(msg);
    if (text === this.lastView || this.state !== 'joined' || this.ws?.readyState !== WebSocket.OPEN) return;
    this.lastView = text;
    this.send(msg);
  }

  /** @param {ServerMsg} msg */
  async handle(msg) {
    switch (msg.type) {
      case 'moved':
        this.onMoved(msg);
        break;
      case 'nodes':
        this.onNodes(msg);
        break;
      case 'joined':
        await this.onJoined(msg);
        break;
      case 'participant_joined':
        this.e2ee?.joined(msg.participant.id);
        this.participants.set(msg.participant.id, msg.participant);
        this.emitParticipants();
        this.notice('joined', { id: msg.participant.id });
        break;
      case 'participant_updated':
        if (msg.participant.id === this.you) {
          this.moderator = msg.participant.moderator;
          this.handRaised = msg.participant.hand_raised;
          this.emitSelf();
        } else {
          this.participants.set(msg.participant.id, msg.participant);
          this.emitParticipants();
        }
        break;
      case 'participant_left':
        this.e2ee?.left(msg.id);
        this.notice('left', { id: msg.id, name: this.participants.get(msg.id)?.name });
        this.participants.delete(msg.id);
        if (this.speaker === msg.id) this.setSpeaker(null);
        this.dispatchEvent(new CustomEvent('left', { detail: { id: msg.id } }));
        this.emitParticipants();
        break;
      case 'active_speaker':
        this.setSpeaker(msg.participant);
        break;
      case 'video_paused':
        // The server has no room on our downlink for these videos.
        this.paused = new Set(msg.mids);
        this.dispatchEvent(new CustomEvent('paused', { detail: { mids: this.paused } }));
        break;
      case 'room_updated':
        this.roomState = msg.room;
        this.dispatchEvent(new CustomEvent('room', { detail: { room: msg.room } }));
        // The lobby turned off: everyone waiting is let in or turned away,
        // without a `lobby_left` each.
        if (!msg.room.lobby && this.waiting.size > 0) {
          this.waiting.clear();
          this.dispatchEvent(new CustomEvent('lobby', { detail: { waiting: this.waiting } }));
        }
        break;
      case 'stream_state':
        this.live = { state: msg.state, reason: msg.reason };
        this.dispatchEvent(new CustomEvent('live', { detail: { live: this.live } }));
        break;
      case 'password_required':
        this.onPasswordRequired(msg);
        break;
      case 'password_not_required':
        this.setState('unprotected');
        break;
      case 'in_lobby':
        this.setState('lobby');
        break;
      case 'lobby_request':
        this.waiting.set(msg.id, msg.name);
        this.dispatchEvent(new CustomEvent('lobby', { detail: { waiting: this.waiting } }));
        break;
      case 'lobby_left':
        this.waiting.delete(msg.id);
        this.dispatchEvent(new CustomEvent('lobby', { detail: { waiting: this.waiting } }));
        break;
      case 'muted_by':
        this.setAudioMuted(true);
        this.notice('muted_by', { id: msg.by });
        break;
      case 'unmute_request':
        this.notice('unmute_request', { id: msg.by });
        break;
      case 'chat':
        await this.onChat(msg);
        break;
      case 'e2ee':
        this.e2ee?.handle(msg.from, msg.data);
        break;
      case 'refused':
        this.notice('refused', { request: msg.request, message: msg.message });
        break;
      case 'answer':
        await this.pc?.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
        break;
      case 'offer':
        await this.onOffer(msg);
        break;
      case 'error':
        console.warn(`server closes the connection: ${msg.code} ${msg.message}`);
        break;
      default:
        break;
    }
  }

  /** `moved`: the room lives on another node. @param {Extract<ServerMsg, {type: 'moved'}>} msg */
  onMoved(msg) {
    // The room lives on another node of the cluster; the server closes
    // next. Followed only to a node our own server named; otherwise the
    // close counts as a failure (and we come back with a pause).
    const url = nodeWsUrl(msg.url);
    if (mayFollow(url, this.ownUrl, this.trusted)) {
      this.wsUrl = /** @type {string} */ (url);
      this.movedTo = url;
      this.hops += 1;
    } else {
      this.refusedMove = true;
    }
  }

  /** `nodes`: the cluster's nodes. @param {Extract<ServerMsg, {type: 'nodes'}>} msg */
  onNodes(msg) {
    // Where to come back through, once this node takes the join (a
    // list sent with a `moved` only says where that may lead); and,
    // from our own page's server, where `moved` may send us.
    const urls = msg.urls.map(nodeWsUrl).filter((u) => u !== null);
    this.heardNodes = urls;
    if (this.connUrl === this.ownUrl) this.trusted = urls;
  }

  /** `joined`: we are in, with the room as it is. @param {Extract<ServerMsg, {type: 'joined'}>} msg */
  async onJoined(msg) {
    if (this.heardNodes) this.nodes = this.heardNodes;
    this.heardNodes = null;
    this.hops = 0;
    this.movedTo = null;
    this.you = msg.you;
    this.moderator = msg.moderator;
    this.roomState = msg.room;
    this.streamUnavailable = msg.stream_unavailable ?? null;
    // A stream under way is announced right after `joined`.
    this.live = null;
    this.dispatchEvent(new CustomEvent('live', { detail: { live: null } }));
    this.participants = new Map(msg.participants.map((p) => [p.id, p]));
    // Ids are the new connection's; the speaker, if any, comes next.
    this.setSpeaker(null);
    this.emitParticipants();
    this.dispatchEvent(new CustomEvent('room', { detail: { room: this.roomState } }));
    this.emitSelf();
    if (this.e2ee) {
      // A fresh worker per connection; keys start afresh too.
      this.frames = new FrameTransforms(/** @type {import('./frames.js').FrameApi} */ (this.frameApi));
      this.e2ee.start(msg.you, msg.participants.map((p) => p.id));
    }
    await this.publish();
    this.setState('joined');
    // A rejoin keeps a raised hand.
    if (this.handRaised) this.raiseHand(true);
  }

  /** `password_required`: the room asks for a password (again). @param {Extract<ServerMsg, {type: 'password_required'}>} msg */
  onPasswordRequired(msg) {
    this.setState('password');
    // A password judged wrong is not sent again (not on a reconnect
    // either). One the server asked us to hold back is sent again by
    // itself after the wait, on this connection only.
    if (msg.wrong) this.password = undefined;
    clearTimeout(this.passwordRetry);
    const ws = this.ws;
    if (msg.retry_after_ms && this.password !== undefined) {
      this.passwordRetry = setTimeout(() => { if (this.ws === ws && this.state === 'password') this.sendJoin(); }, msg.retry_after_ms);
    }
    this.dispatchEvent(new CustomEvent('password', { detail: { wrong: msg.wrong, retryAfterMs: msg.retry_after_ms } }));
  }

  /** `chat`: a message from someone, sealed in an encrypted meeting. @param {Extract<ServerMsg, {type: 'chat'}>} msg */
  async onChat(msg) {
    // Sealed chat opens with the sender's key; what does not open is
    // shown as such, never as ciphertext, and one that came before (a
    // server replaying it) is not shown again. In an encrypted meeting
    // chat that is not sealed comes from no participant: not shown as
    // theirs.
    /** @type {string|null} */
    let text = msg.text;
    if (this.e2ee) {
      const opened = msg.sealed ? await this.e2ee.openChat(msg.from, msg.text, msg.private) : { failed: true };
      if ('replayed' in opened) return;
      text = 'text' in opened ? opened.text : null;
    }
    this.dispatchEvent(new CustomEvent('chat', { detail: { from: msg.from, text, private: msg.private } }));
  }

  /** `offer`: the server's offer of what we receive. @param {Extract<ServerMsg, {type: 'offer'}>} msg */
  async onOffer(msg) {
    const pc = this.pc;
    if (!pc) return;
    this.tracks = new Map(msg.tracks.map((t) => [t.mid, t]));
    await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    if (this.pc !== pc) return; // torn down meanwhile: not for the next connection
    this.send(answerMsg(pc.localDescription?.sdp ?? answer.sdp ?? ''));
  }

  /** Creates the peer connection and sends our one offer (what we publish). */
  async publish() {
    const config = /** @type {RTCConfiguration} */ ({ bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require', ...peerConnectionOptions(this.frameApi) });
    const pc = new RTCPeerConnection(config);
    this.pc = pc;
    const audio = this.stream.getAudioTracks()[0];
    const video = this.stream.getVideoTracks()[0];
    this.audioTx = pc.addTransceiver(audio ?? 'audio', { direction: 'sendonly', streams: [this.stream] });
    this.videoTx = addCamera(pc, video, this.stream);
    this.screenTx = pc.addTransceiver('video', { direction: 'sendonly' });
    this.screenSharing = false;
    // End-to-end: every frame we send is encrypted before it leaves (and
    // dropped while there is no key), every frame we get decrypted.
    const frames = this.frames;
    if (frames) {
      for (const [id, tx, kind] of /** @type {const} */ ([['send-audio', this.audioTx, 'audio'], ['send-video', this.videoTx, 'video'], ['send-screen', this.screenTx, 'video']])) {
        frames.attach(tx.sender, { id, direction: 'send', kind, sframe: true });
      }
    }
    pc.ontrack = (ev) => {
      const info = ev.transceiver.mid ? this.tracks.get(ev.transceiver.mid) : undefined;
      if (!info) return;
      frames?.attach(ev.receiver, {
        id: `receive-${info.participant}-${info.screen ? 'screen' : info.kind}-${ev.transceiver.mid}`,
        direction: 'receive',
        kind: info.kind,
        participant: info.participant,
        sframe: true,
      });
      this.dispatchEvent(new CustomEvent('track', {
        detail: { participant: info.participant, kind: info.kind, screen: Boolean(info.screen), track: ev.track, mid: info.mid },
      }));
    };
    pc.onconnectionstatechange = () => {
      if (this.pc !== pc) return;
      // The back-off starts over only once media flows: a join that
      // cannot reach the media port must not retry twice a second forever.
      if (pc.connectionState === 'connected') {
        this.attempt = 0;
        this.mediaFailing = false;
        this.dispatchEvent(new CustomEvent('media', { detail: { connected: true } }));
      }
      if (pc.connectionState === 'failed') {
        this.mediaFailing = true;
        this.closeFor(CloseCode.MEDIA_FAILED);
      }
    };
    const offer = await pc.createOffer();
    await pc.setLocalDescription(offer);
    if (this.pc !== pc) return; // torn down meanwhile: not for the next connection
    this.send(offerMsg(pc.localDescription?.sdp ?? offer.sdp ?? '', this.screenTx.mid));
  }

  emitSelf() {
    this.dispatchEvent(new CustomEvent('self', { detail: { moderator: this.moderator, hand: this.handRaised } }));
  }

  emitParticipants() {
    this.dispatchEvent(new CustomEvent('participants', { detail: { participants: this.participants } }));
  }

  /**
   * Mutes or unmutes the microphone (the track keeps running, sending silence).
   * @param {boolean} muted
   */
  setAudioMuted(muted) {
    this.audioMuted = muted;
    for (const t of this.stream.getAudioTracks()) t.enabled = !muted;
    this.send(mediaStateMsg(this.audioMuted, this.videoMuted, this.screenSharing));
    this.emitSelf();
  }

  /**
   * Turns the camera off (the track is stopped, so the camera light goes out)
   * or on again with a new track.
   * @param {boolean} muted
   * @param {MediaStreamTrack|null} newTrack a fresh camera track when turning on
   */
  async setVideoMuted(muted, newTrack) {
    this.videoMuted = muted;
    for (const t of this.stream.getVideoTracks()) {
      if (muted || t !== newTrack) { t.stop(); this.stream.removeTrack(t); }
    }
    if (!muted && newTrack) this.stream.addTrack(newTrack);
    await this.videoTx?.sender.replaceTrack(muted ? null : newTrack);
    this.send(mediaStateMsg(this.audioMuted, this.videoMuted, this.screenSharing));
    this.emitSelf();
  }

  /**
   * Swaps the microphone (device change) without renegotiation.
   * @param {MediaStreamTrack} track
   */
  async replaceAudioTrack(track) {
    for (const t of this.stream.getAudioTracks()) { t.stop(); this.stream.removeTrack(t); }
    track.enabled = !this.audioMuted;
    this.stream.addTrack(track);
    await this.audioTx?.sender.replaceTrack(track);
  }

  /** Shares a screen or window (asks the browser which). */
  async shareScreen() {
    const s = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    const track = s.getVideoTracks()[0];
    if (!track || !this.screenTx) return;
    track.onended = () => { this.stopScreen(); };
    await this.screenTx.sender.replaceTrack(track);
    this.screenSharing = true;
    this.send(mediaStateMsg(this.audioMuted, this.videoMuted, true));
    this.emitSelf();
  }

  async stopScreen() {
    const track = this.screenTx?.sender.track;
    await this.screenTx?.sender.replaceTrack(null);
    track?.stop();
    this.screenSharing = false;
    this.send(mediaStateMsg(this.audioMuted, this.videoMuted, false));
    this.emitSelf();
  }

  /**
   * Leaves for good: as asked (`left`), or because staying cannot work
   * (`failed`, for the reason `code`).
   * @param {'left'|'failed'} [state] @param {number} [code]
   */
  leave(state = 'left', code) {
    this.closing = true;
    this.send(leaveMsg());
    this.ws?.close(1000);
    this.teardown();
    this.setState(state, code);
  }

  /**
   * The page may not connect to `url` (its Content-Security-Policy, made
   * before that node started, does not name it). If that is the node we
   * were sent to, the meeting goes on from a page of that node: `relocate`
   * with its https origin, and this session ends.
   * @param {string} url
   */
  blocked(url) {
    let host;
    try { host = new URL(url).host; } catch { return; }
    // The close of the refused socket may have come first and moved on.
    if (this.closing || !this.movedTo) return;
    const target = new URL(this.movedTo);
    if (host !== target.host) return;
    this.closing = true;
    if (this.ws && this.ws.readyState !== WebSocket.CLOSED) this.ws.close(1000);
    this.teardown();
    this.dispatchEvent(new CustomEvent('relocate', { detail: { origin: `https://${target.host}` } }));
  }

  teardown() {
    this.e2ee?.stop();
    this.frames?.close();
    this.frames = null;
    this.screenTx?.sender.track?.stop();
    this.screenSharing = false;
    this.pc?.close();
    this.pc = null;
    this.tracks.clear();
    this.participants.clear();
    this.waiting.clear();
    this.emitParticipants();
    this.dispatchEvent(new CustomEvent('lobby', { detail: { waiting: this.waiting } }));
  }

  /**
   * Receive statistics per remote participant, for the UI and for tests.
   * Asks each receiver for its own report (standard everywhere) rather
   * than reading `mid` off the connection's report, which not every
   * browser puts on inbound-rtp entries.
   * @returns {Promise<Record<number, {framesDecoded: number, screenFramesDecoded: number, audioPacketsReceived: number, videoPacketsReceived: number, packetsReceived: number, packetsLost: number, jitter: number}>>}
   */
  async statsByParticipant() {
    /** @type {Record<number, {framesDecoded: number, screenFramesDecoded: number, audioPacketsReceived: number, videoPacketsReceived: number, packetsReceived: number, packetsLost: number, jitter: number}>} */
    const out = {};
    if (!this.pc) return out;
    const receiving = this.pc.getTransceivers().flatMap((t) => {
      const info = t.mid ? this.tracks.get(t.mid) : undefined;
      return info ? [{ info, receiver: t.receiver }] : [];
    });
    const reports = await Promise.all(receiving.map((r) => r.receiver.getStats()));
    for (const [i, { info }] of receiving.entries()) {
      const e = out[info.participant] ??= {
        framesDecoded: 0, screenFramesDecoded: 0, audioPacketsReceived: 0, videoPacketsReceived: 0, packetsReceived: 0, packetsLost: 0, jitter: 0,
      };
      reports[i].forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        // Camera and microphone: how well this participant reaches us.
        if (!info.screen) {
          e.packetsReceived += s.packetsReceived ?? 0;
          e.packetsLost += Math.max(0, s.packetsLost ?? 0);
          e.jitter = Math.max(e.jitter, s.jitter ?? 0);
        }
        if (info.screen) {
          e.screenFramesDecoded += s.framesDecoded ?? 0;
        } else if (info.kind === 'video') {
          e.framesDecoded += s.framesDecoded ?? 0;
          e.videoPacketsReceived += s.packetsReceived ?? 0;
        } else {
          e.audioPacketsReceived += s.packetsReceived ?? 0;
        }
      });
    }
    return out;
  }

  /**
   * How well what we send reaches the server: the largest share of
   * packets lost (0–1) the server's receiver reports give for our
   * camera and microphone, and the round-trip time (seconds), if known.
   * @returns {Promise<{fractionLost: number, rtt: number|null}>}
   */
  async uplinkStats() {
    let fractionLost = 0;
    /** @type {number|null} */
    let rtt = null;
    if (!this.pc) return { fractionLost, rtt };
    (await this.pc.getStats()).forEach((s) => {
      if (s.type === 'remote-inbound-rtp') {
        fractionLost = Math.max(fractionLost, s.fractionLost ?? 0);
        if (typeof s.roundTripTime === 'number') rtt = Math.max(rtt ?? 0, s.roundTripTime);
      }
    });
    return { fractionLost, rtt };
  }
}

/**
 * The camera's transceiver: in simulcast layers (CAMERA_LAYERS) where the
 * browser can, else one stream.
 * @param {RTCPeerConnection} pc @param {MediaStreamTrack|undefined} video @param {MediaStream} stream
 */
function addCamera(pc, video, stream) {
  try {
    return pc.addTransceiver(video ?? 'video', {
      direction: 'sendonly', streams: [stream], sendEncodings: CAMERA_LAYERS.map((l) => ({ ...l })),
    });
  } catch {
    return pc.addTransceiver(video ?? 'video', { direction: 'sendonly', streams: [stream] });
  }
}
