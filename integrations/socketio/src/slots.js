'use strict';

/** Hash slots of a Redis Cluster. */
const SLOTS = 16384;

/** Characters of the lease tags: id characters that need no escaping anywhere. */
const TAG_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i += 1) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit += 1) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/**
 * CRC16-XMODEM of `bytes`, the checksum Redis Cluster hashes keys with.
 * @param {Uint8Array} bytes
 * @returns {number}
 */
function crc16(bytes) {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ byte) & 0xff];
  return crc;
}

/**
 * The hash slot of a key, as Redis computes it: of the hash tag (the part between the first
 * `{` and the next `}`, when not empty), else of the whole key.
 * @param {string} key
 * @returns {number}
 */
function keySlot(key) {
  const bytes = Buffer.from(key);
  const open = bytes.indexOf(0x7b);
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1);
    if (close > open + 1) return crc16(bytes.subarray(open + 1, close)) % SLOTS;
  }
  return crc16(bytes) % SLOTS;
}

/** @type {string[] | null} */
let slotTags = null;

/**
 * A short tag per hash slot (`tags[slot]` hashes to `slot`), found once by walking the strings
 * of `TAG_CHARS` by length: one, two, three characters… until every slot has one.
 * @returns {string[]}
 */
function tagsBySlot() {
  if (slotTags) return slotTags;
  /** @type {string[]} */
  const tags = new Array(SLOTS);
  let missing = SLOTS;
  let layer = [''];
  while (missing > 0) {
    const next = [];
    for (const prefix of layer) {
      for (const char of TAG_CHARS) {
        const tag = prefix + char;
        next.push(tag);
        const slot = crc16(Buffer.from(tag)) % SLOTS;
        if (tags[slot] === undefined) {
          tags[slot] = tag;
          missing -= 1;
        }
      }
    }
    layer = next;
  }
  slotTags = tags;
  return tags;
}

exports.keySlot = keySlot;
exports.tagsBySlot = tagsBySlot;
exports.SLOTS = SLOTS;
