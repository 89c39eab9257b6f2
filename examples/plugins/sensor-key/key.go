package main

import (
	"encoding/binary"
	"strconv"

	"github.com/iqengine/iqengine/sdk/go/iq"
)

// A key is a u16 site then a u32 sensor, both big-endian: byte order is
// numeric order, and a site's 2 bytes are a prefix of all its sensors' keys.
const (
	keyLen    = 6
	prefixLen = 2
)

// appendKeyJSON writes a 6-byte key as {"site":12,"sensor":4711}.
func appendKeyJSON(dst, key []byte) ([]byte, error) {
	if len(key) != keyLen {
		return dst, iq.Reject("key is %d bytes, want %d", len(key), keyLen)
	}
	dst = append(dst, `{"site":`...)
	dst = strconv.AppendUint(dst, uint64(binary.BigEndian.Uint16(key)), 10)
	dst = append(dst, `,"sensor":`...)
	dst = strconv.AppendUint(dst, uint64(binary.BigEndian.Uint32(key[2:])), 10)
	return append(dst, '}'), nil
}

// appendKey parses a key as written in a URL: "12-4711" (site-sensor, the 6
// key bytes) or "12" (the site alone, its 2-byte prefix). Decimal digits
// only; leading zeros are allowed.
func appendKey(dst []byte, text string) ([]byte, error) {
	siteText, sensorText, hasSensor := text, "", false
	for i := 0; i < len(text); i++ {
		if text[i] == '-' {
			siteText, sensorText, hasSensor = text[:i], text[i+1:], true
			break
		}
	}
	site, ok := parseDecimal(siteText, 0xFFFF)
	if !ok {
		return dst, badKey(text)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(site))
	if !hasSensor {
		return dst, nil
	}
	sensor, ok := parseDecimal(sensorText, 0xFFFFFFFF)
	if !ok {
		return dst, badKey(text)
	}
	return binary.BigEndian.AppendUint32(dst, uint32(sensor)), nil
}

func badKey(text string) error {
	return iq.Reject("key %q: want SITE-SENSOR or SITE in decimal digits, site at most 65535, sensor at most 4294967295", text)
}

// parseDecimal parses one or more ASCII digits as a number at most max.
func parseDecimal(s string, max uint64) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0') // v <= max <= 2^32 before this: no overflow
		if v > max {
			return 0, false
		}
	}
	return v, true
}

// partitionOf is the partition the producer chose: site % partitions (the
// producer writes all of a site's sensors to one partition).
func partitionOf(key []byte, partitions int32) (int32, error) {
	if len(key) < prefixLen {
		return 0, iq.Reject("key is %d bytes, shorter than the 2-byte site", len(key))
	}
	return int32(binary.BigEndian.Uint16(key)) % partitions, nil
}
