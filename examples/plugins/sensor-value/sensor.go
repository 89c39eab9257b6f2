package main

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"

	"github.com/iqengine/iqengine/sdk/go/iq"
)

// The record layout (little-endian): version u8, status u8, site u16,
// sensor u32, time i64 (ms since the epoch), temperature i32 (hundredths of
// a degree Celsius), humidity u32 (tenths of a percent), then a 0–64 byte
// UTF-8 label.
const (
	headerSize  = 24
	maxLabelLen = 64
)

var statusNames = [...]string{"ok", "degraded", "offline"}

// appendJSON decodes one sensor record and appends its JSON to dst:
//
//	{"sensor":4711,"site":12,"time":1700000000000,"status":"ok","temp_c":21.37,"humidity":45.1,"label":"hall"}
func appendJSON(dst, rec []byte) ([]byte, error) {
	if len(rec) < headerSize {
		return dst, iq.Reject("record is %d bytes, shorter than %d", len(rec), headerSize)
	}
	if rec[0] != 1 {
		return dst, iq.Reject("version %d, want 1", rec[0])
	}
	if int(rec[1]) >= len(statusNames) {
		return dst, iq.Reject("status %d, want 0 (ok), 1 (degraded) or 2 (offline)", rec[1])
	}
	label := rec[headerSize:]
	if len(label) > maxLabelLen {
		return dst, iq.Reject("label is %d bytes, longer than %d", len(label), maxLabelLen)
	}
	if !utf8.Valid(label) {
		return dst, iq.Reject("label is not valid UTF-8")
	}
	site := binary.LittleEndian.Uint16(rec[2:])
	sensor := binary.LittleEndian.Uint32(rec[4:])
	time := int64(binary.LittleEndian.Uint64(rec[8:]))
	temp := int32(binary.LittleEndian.Uint32(rec[16:]))
	humidity := binary.LittleEndian.Uint32(rec[20:])

	dst = append(dst, `{"sensor":`...)
	dst = strconv.AppendUint(dst, uint64(sensor), 10)
	dst = append(dst, `,"site":`...)
	dst = strconv.AppendUint(dst, uint64(site), 10)
	dst = append(dst, `,"time":`...)
	dst = strconv.AppendInt(dst, time, 10)
	dst = append(dst, `,"status":"`...)
	dst = append(dst, statusNames[rec[1]]...)
	dst = append(dst, `","temp_c":`...)
	dst = iq.AppendFixed(dst, int64(temp), 2)
	dst = append(dst, `,"humidity":`...)
	dst = iq.AppendFixed(dst, int64(humidity), 1)
	dst = append(dst, `,"label":`...)
	dst = iq.AppendJSONString(dst, label)
	return append(dst, '}'), nil
}
