package oplog

// SlotCount is the number of Redis Cluster hash slots.
const SlotCount = 16384

// HashSlot returns the Redis Cluster hash slot of key: CRC16 of the key, or
// of the part between the first '{' and the next '}' when that is non-empty,
// mod 16384.
func HashSlot(key []byte) uint16 {
	for i, c := range key {
		if c == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						key = key[i+1 : j]
					}
					break
				}
			}
			break
		}
	}
	return crc16(key) % SlotCount
}

// PartitionOfSlot maps a slot to one of n partitions by contiguous slot
// ranges, so a range of slots can later move to another node as a unit.
func PartitionOfSlot(slot uint16, n int32) int32 {
	return int32(int64(slot) * int64(n) / SlotCount)
}

// Partition returns the partition of key among n.
func Partition(key []byte, n int32) int32 { return PartitionOfSlot(HashSlot(key), n) }

// crc16 is CRC-16/XMODEM, the checksum Redis Cluster uses.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crc16tab[byte(crc>>8)^c]
	}
	return crc
}

var crc16tab = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for j := 0; j < 8; j++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()
