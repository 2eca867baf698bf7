package server

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strings"

	"github.com/georep/georep/crdt"
)

// Geo commands: a geo set is a sorted set whose scores are 52-bit
// geohashes (so the same Active-Active rules apply: GEOADD is a ZADD, LWW
// on the score). The geohash, distance and search-area arithmetic follow
// Redis's geohash.c, geohash_helper.c and geo.c, so results (and the order
// of unsorted results) are Redis's.
func addGeoCommands(r *registry) {
	w := flagWrite | flagDenyOOM
	r.add(&command{name: "geoadd", arity: -5, flags: w, run: cmdGeoAdd})
	r.add(&command{name: "geopos", arity: -2, flags: flagRead, run: cmdGeoPos})
	r.add(&command{name: "geodist", arity: -4, flags: flagRead, run: cmdGeoDist})
	r.add(&command{name: "geohash", arity: -2, flags: flagRead, run: cmdGeoHash})
	r.add(&command{name: "georadius", arity: -6, flags: w | flagWait, run: cmdGeoSearch})
	r.add(&command{name: "georadius_ro", arity: -6, flags: flagRead, run: cmdGeoSearch})
	r.add(&command{name: "georadiusbymember", arity: -5, flags: w | flagWait, run: cmdGeoSearch})
	r.add(&command{name: "georadiusbymember_ro", arity: -5, flags: flagRead, run: cmdGeoSearch})
	r.add(&command{name: "geosearch", arity: -7, flags: flagRead, run: cmdGeoSearch})
	r.add(&command{name: "geosearchstore", arity: -8, flags: w, run: cmdGeoSearch})
}

// Geohash constants (EPSG:900913 latitude limits).
const (
	geoLatMin   = -85.05112878
	geoLatMax   = 85.05112878
	geoLongMin  = -180.0
	geoLongMax  = 180.0
	geoStepMax  = 26
	earthRadius = 6372797.560856 // meters
	mercatorMax = 20037726.37
)

// geoHash is a geohash of step*2 bits.
type geoHash struct {
	bits uint64
	step uint
}

func (h geoHash) zero() bool { return h.bits == 0 && h.step == 0 }

type geoRange struct{ min, max float64 }

// interleave puts x's bits in the even positions and y's in the odd.
func interleave(x, y uint32) uint64 {
	spread := func(v uint64) uint64 {
		v = (v | v<<16) & 0x0000FFFF0000FFFF
		v = (v | v<<8) & 0x00FF00FF00FF00FF
		v = (v | v<<4) & 0x0F0F0F0F0F0F0F0F
		v = (v | v<<2) & 0x3333333333333333
		return (v | v<<1) & 0x5555555555555555
	}
	return spread(uint64(x)) | spread(uint64(y))<<1
}

// deinterleave returns the even bits (low half) and odd bits (high half).
func deinterleave(v uint64) uint64 {
	squash := func(x uint64) uint64 {
		x &= 0x5555555555555555
		x = (x | x>>1) & 0x3333333333333333
		x = (x | x>>2) & 0x0F0F0F0F0F0F0F0F
		x = (x | x>>4) & 0x00FF00FF00FF00FF
		x = (x | x>>8) & 0x0000FFFF0000FFFF
		return (x | x>>16) & 0x00000000FFFFFFFF
	}
	return squash(v) | squash(v>>1)<<32
}

func geoEncode(long, lat geoRange, lon, la float64, step uint) (geoHash, bool) {
	if lon > geoLongMax || lon < geoLongMin || la > geoLatMax || la < geoLatMin {
		return geoHash{}, false
	}
	if la < lat.min || la > lat.max || lon < long.min || lon > long.max {
		return geoHash{}, false
	}
	latOff := (la - lat.min) / (lat.max - lat.min)
	longOff := (lon - long.min) / (long.max - long.min)
	latOff *= float64(uint64(1) << step)
	longOff *= float64(uint64(1) << step)
	return geoHash{bits: interleave(uint32(latOff), uint32(longOff)), step: step}, true
}

var (
	wgsLong = geoRange{geoLongMin, geoLongMax}
	wgsLat  = geoRange{geoLatMin, geoLatMax}
)

func geoDecode(h geoHash) (long, lat geoRange, ok bool) {
	if h.zero() {
		return geoRange{}, geoRange{}, false
	}
	sep := deinterleave(h.bits)
	ilat, ilon := uint32(sep), uint32(sep>>32)
	latScale := wgsLat.max - wgsLat.min
	longScale := wgsLong.max - wgsLong.min
	div := float64(uint64(1) << h.step)
	lat.min = wgsLat.min + (float64(ilat)*1.0/div)*latScale
	lat.max = wgsLat.min + ((float64(ilat)+1)*1.0/div)*latScale
	long.min = wgsLong.min + (float64(ilon)*1.0/div)*longScale
	long.max = wgsLong.min + ((float64(ilon)+1)*1.0/div)*longScale
	return long, lat, true
}

// decodeScore returns the longitude and latitude a geo score stands for
// (the center of its cell, clamped to the valid range).
func decodeScore(score float64) (lon, lat float64, ok bool) {
	long, la, ok := geoDecode(geoHash{bits: uint64(score), step: geoStepMax})
	if !ok {
		return 0, 0, false
	}
	lon = (long.min + long.max) / 2
	lat = (la.min + la.max) / 2
	lon = math.Min(math.Max(lon, geoLongMin), geoLongMax)
	lat = math.Min(math.Max(lat, geoLatMin), geoLatMax)
	return lon, lat, true
}

// align52 left-aligns a hash to 52 bits.
func align52(h geoHash) uint64 { return h.bits << (52 - h.step*2) }

func moveX(h *geoHash, d int) {
	x := h.bits & 0xaaaaaaaaaaaaaaaa
	y := h.bits & 0x5555555555555555
	zz := uint64(0x5555555555555555) >> (64 - h.step*2)
	if d > 0 {
		x += zz + 1
	} else {
		x |= zz
		x -= zz + 1
	}
	x &= uint64(0xaaaaaaaaaaaaaaaa) >> (64 - h.step*2)
	h.bits = x | y
}

func moveY(h *geoHash, d int) {
	x := h.bits & 0xaaaaaaaaaaaaaaaa
	y := h.bits & 0x5555555555555555
	zz := uint64(0xaaaaaaaaaaaaaaaa) >> (64 - h.step*2)
	if d > 0 {
		y += zz + 1
	} else {
		y |= zz
		y -= zz + 1
	}
	y &= uint64(0x5555555555555555) >> (64 - h.step*2)
	h.bits = x | y
}

// geoNeighbors are a cell's eight neighbours.
type geoNeighbors struct {
	north, south, east, west, northEast, northWest, southEast, southWest geoHash
}

func neighborsOf(h geoHash) geoNeighbors {
	mv := func(dx, dy int) geoHash {
		n := h
		if dx != 0 {
			moveX(&n, dx)
		}
		if dy != 0 {
			moveY(&n, dy)
		}
		return n
	}
	return geoNeighbors{
		east: mv(1, 0), west: mv(-1, 0), south: mv(0, -1), north: mv(0, 1),
		northWest: mv(-1, 1), northEast: mv(1, 1), southEast: mv(1, -1), southWest: mv(-1, -1),
	}
}

func degRad(a float64) float64 { return a * (math.Pi / 180.0) }
func radDeg(a float64) float64 { return a / (math.Pi / 180.0) }

// geoLatDistance is the distance between two latitudes on one meridian.
func geoLatDistance(lat1, lat2 float64) float64 {
	return earthRadius * math.Abs(degRad(lat2)-degRad(lat1))
}

// geoDistance is the haversine distance in meters.
func geoDistance(lon1, lat1, lon2, lat2 float64) float64 {
	lon1r, lon2r := degRad(lon1), degRad(lon2)
	v := math.Sin((lon2r - lon1r) / 2)
	if v == 0 {
		return geoLatDistance(lat1, lat2)
	}
	lat1r, lat2r := degRad(lat1), degRad(lat2)
	u := math.Sin((lat2r - lat1r) / 2)
	a := u*u + math.Cos(lat1r)*math.Cos(lat2r)*v*v
	return 2.0 * earthRadius * math.Asin(math.Sqrt(a))
}

// geoShape is a search area: a circle (radius) or a box (width, height),
// in units of conversion meters, around (lon, lat).
type geoShape struct {
	lon, lat      float64
	box           bool
	radius        float64
	width, height float64
	conversion    float64
	bounds        [4]float64 // min lon, min lat, max lon, max lat
}

func estimateSteps(rangeMeters, lat float64) uint {
	if rangeMeters == 0 {
		return 26
	}
	step := 1
	for rangeMeters < mercatorMax {
		rangeMeters *= 2
		step++
	}
	step -= 2
	if lat > 66 || lat < -66 {
		step--
		if lat > 80 || lat < -80 {
			step--
		}
	}
	step = max(step, 1)
	step = min(step, 26)
	return uint(step)
}

func (s *geoShape) boundingBox() {
	height := s.conversion * s.radius
	width := height
	if s.box {
		height = s.conversion * s.height / 2
		width = s.conversion * s.width / 2
	}
	latDelta := radDeg(height / earthRadius)
	longDeltaTop := radDeg(width / earthRadius / math.Cos(degRad(s.lat+latDelta)))
	longDeltaBottom := radDeg(width / earthRadius / math.Cos(degRad(s.lat-latDelta)))
	if s.lat < 0 {
		s.bounds[0] = s.lon - longDeltaBottom
		s.bounds[2] = s.lon + longDeltaBottom
	} else {
		s.bounds[0] = s.lon - longDeltaTop
		s.bounds[2] = s.lon + longDeltaTop
	}
	s.bounds[1] = s.lat - latDelta
	s.bounds[3] = s.lat + latDelta
}

// areas returns the nine cells (center first) to search, zero where a
// neighbour is useless.
func (s *geoShape) areas() [9]geoHash {
	s.boundingBox()
	minLon, minLat, maxLon, maxLat := s.bounds[0], s.bounds[1], s.bounds[2], s.bounds[3]
	radius := s.radius
	if s.box {
		radius = math.Sqrt((s.width/2)*(s.width/2) + (s.height/2)*(s.height/2))
	}
	radius *= s.conversion
	steps := estimateSteps(radius, s.lat)
	hash, _ := geoEncode(wgsLong, wgsLat, s.lon, s.lat, steps)
	nb := neighborsOf(hash)
	long, lat, _ := geoDecode(hash)
	decrease := false
	if _, nLat, _ := geoDecode(nb.north); nLat.max < maxLat {
		decrease = true
	}
	if _, sLat, _ := geoDecode(nb.south); sLat.min > minLat {
		decrease = true
	}
	if eLong, _, _ := geoDecode(nb.east); eLong.max < maxLon {
		decrease = true
	}
	if wLong, _, _ := geoDecode(nb.west); wLong.min > minLon {
		decrease = true
	}
	if steps > 1 && decrease {
		steps--
		hash, _ = geoEncode(wgsLong, wgsLat, s.lon, s.lat, steps)
		nb = neighborsOf(hash)
		long, lat, _ = geoDecode(hash)
	}
	if steps >= 2 {
		if lat.min < minLat {
			nb.south, nb.southWest, nb.southEast = geoHash{}, geoHash{}, geoHash{}
		}
		if lat.max > maxLat {
			nb.north, nb.northEast, nb.northWest = geoHash{}, geoHash{}, geoHash{}
		}
		if long.min < minLon {
			nb.west, nb.southWest, nb.northWest = geoHash{}, geoHash{}, geoHash{}
		}
		if long.max > maxLon {
			nb.east, nb.southEast, nb.northEast = geoHash{}, geoHash{}, geoHash{}
		}
	}
	return [9]geoHash{hash, nb.north, nb.south, nb.east, nb.west, nb.northEast, nb.northWest, nb.southEast, nb.southWest}
}

// within reports whether a point is in the shape, with its distance in
// meters from the center.
func (s *geoShape) within(lon, lat float64) (float64, bool) {
	if !s.box {
		d := geoDistance(s.lon, s.lat, lon, lat)
		return d, d <= s.radius*s.conversion
	}
	if geoLatDistance(lat, s.lat) > s.height*s.conversion/2 {
		return 0, false
	}
	if geoDistance(lon, lat, s.lon, lat) > s.width*s.conversion/2 {
		return 0, false
	}
	return geoDistance(s.lon, s.lat, lon, lat), true
}

// geoPoint is a search result.
type geoPoint struct {
	member   []byte
	lon, lat float64
	dist     float64
	score    float64
}

// geoSearch returns the members in the shape, in the order of the cells
// searched (limit > 0: stop once that many are found).
func geoSearch(v View, key []byte, s *geoShape, limit int) ([]geoPoint, error) {
	cells := s.areas()
	var out []geoPoint
	last := -1
	for i, h := range cells {
		if h.zero() {
			continue
		}
		if last >= 0 && h == cells[last] {
			continue
		}
		if limit > 0 && len(out) >= limit {
			break
		}
		lo := float64(align52(h))
		h.bits++
		hi := float64(align52(h))
		err := v.ScanScores(key, lo, nil, false, func(m []byte, score float64) bool {
			if score >= hi {
				return false
			}
			lon, lat, ok := decodeScore(score)
			if !ok {
				return true
			}
			if d, in := s.within(lon, lat); in {
				out = append(out, geoPoint{member: m, lon: lon, lat: lat, dist: d, score: score})
			}
			return limit == 0 || len(out) < limit
		})
		if err != nil {
			return nil, err
		}
		last = i
	}
	return out, nil
}

// parseLonLat parses a longitude, latitude pair like Redis.
func parseLonLat(lonArg, latArg []byte) (lon, lat float64, err error) {
	var ok bool
	if lon, ok = parseScore(lonArg); !ok {
		return 0, 0, ErrNotFloat
	}
	if lat, ok = parseScore(latArg); !ok {
		return 0, 0, ErrNotFloat
	}
	if lon < geoLongMin || lon > geoLongMax || lat < geoLatMin || lat > geoLatMax {
		return 0, 0, errorf("ERR invalid longitude,latitude pair %f,%f", lon, lat)
	}
	return lon, lat, nil
}

// parseUnit returns the meters in one unit.
func parseUnit(b []byte) (float64, error) {
	switch strings.ToLower(string(b)) {
	case "m":
		return 1, nil
	case "km":
		return 1000, nil
	case "ft":
		return 0.3048, nil
	case "mi":
		return 1609.34, nil
	}
	return 0, ErrGeoUnit
}

func cmdGeoAdd(cl *call) (Reply, error) {
	key := cl.args[1]
	var f zaddFlags
	i := 2
opts:
	for ; i < len(cl.args); i++ {
		switch strings.ToLower(string(cl.args[i])) {
		case "nx":
			f.nx = true
		case "xx":
			f.xx = true
		case "ch":
			f.ch = true
		default:
			break opts
		}
	}
	rest := cl.args[i:]
	if len(rest)%3 != 0 || (f.nx && f.xx) || len(rest) == 0 {
		return Reply{}, ErrSyntax
	}
	var scores []float64
	var members [][]byte
	for j := 0; j < len(rest); j += 3 {
		lon, lat, err := parseLonLat(rest[j], rest[j+1])
		if err != nil {
			return Reply{}, err
		}
		h, _ := geoEncode(wgsLong, wgsLat, lon, lat, geoStepMax)
		scores = append(scores, float64(align52(h)))
		members = append(members, rest[j+2])
	}
	return zaddReply(cl, key, f, scores, members)
}

// geoMembers runs fn for the scores of members of geo set key (nil score
// pointer: missing).
func geoScores(cl *call, fn func(v View, exists bool) error) error {
	return cl.view(func(v View) error {
		_, ok, err := collection(v, cl.args[1], crdt.TypeZSet)
		if err != nil {
			return err
		}
		return fn(v, ok)
	})
}

// humanDouble formats like Redis's addReplyHumanLongDouble ("%.17Lf",
// trailing zeros removed).
func humanDouble(f float64) []byte {
	return []byte(crdt.FormatFloat(crdt.FloatFromBig(newBig(f))))
}

func newBig(f float64) *big.Float { return new(big.Float).SetFloat64(f) }

func cmdGeoPos(cl *call) (Reply, error) {
	var out []Reply
	err := geoScores(cl, func(v View, exists bool) error {
		for _, m := range cl.args[2:] {
			s, ok := 0.0, false
			if exists {
				var err error
				if s, ok, err = zscore(v, cl.args[1], m); err != nil {
					return err
				}
			}
			lon, lat, dok := decodeScore(s)
			if !ok || !dok {
				out = append(out, replyNullArray)
				continue
			}
			out = append(out, array(bulk(humanDouble(lon)), bulk(humanDouble(lat))))
		}
		return nil
	})
	return array(out...), err
}

func cmdGeoDist(cl *call) (Reply, error) {
	toMeter := 1.0
	switch {
	case len(cl.args) == 5:
		var err error
		if toMeter, err = parseUnit(cl.args[4]); err != nil {
			return Reply{}, err
		}
	case len(cl.args) > 5:
		return Reply{}, ErrSyntax
	}
	r := replyNull
	err := geoScores(cl, func(v View, exists bool) error {
		if !exists {
			return nil
		}
		s1, ok1, err := zscore(v, cl.args[1], cl.args[2])
		if err != nil {
			return err
		}
		s2, ok2, err := zscore(v, cl.args[1], cl.args[3])
		if err != nil || !ok1 || !ok2 {
			return err
		}
		lon1, lat1, d1 := decodeScore(s1)
		lon2, lat2, d2 := decodeScore(s2)
		if d1 && d2 {
			r = bulkString(fmt.Sprintf("%.4f", geoDistance(lon1, lat1, lon2, lat2)/toMeter))
		}
		return nil
	})
	return r, err
}

func cmdGeoHash(cl *call) (Reply, error) {
	const alphabet = "0123456789bcdefghjkmnpqrstuvwxyz"
	var out []Reply
	err := geoScores(cl, func(v View, exists bool) error {
		for _, m := range cl.args[2:] {
			s, ok := 0.0, false
			if exists {
				var err error
				if s, ok, err = zscore(v, cl.args[1], m); err != nil {
					return err
				}
			}
			lon, lat, dok := decodeScore(s)
			if !ok || !dok {
				out = append(out, replyNull)
				continue
			}
			h, _ := geoEncode(geoRange{-180, 180}, geoRange{-90, 90}, lon, lat, 26)
			buf := make([]byte, 11)
			for i := range buf {
				idx := 0
				if i < 10 {
					idx = int(h.bits>>(52-(uint(i)+1)*5)) & 0x1f
				}
				buf[i] = alphabet[idx]
			}
			out = append(out, bulk(buf))
		}
		return nil
	})
	return array(out...), err
}

// geoQuery is a parsed GEORADIUS / GEOSEARCH family command.
type geoQuery struct {
	src, store                      []byte
	storeDist                       bool
	withDist, withHash, withCoord   bool
	any                             bool
	count                           int64
	sort                            int // 0 none, 1 asc, 2 desc
	fromMember                      []byte
	hasCenter, hasShape, haveMember bool
	shape                           geoShape
}

// parseGeoQuery parses a command in Redis's order, which resolve (the
// position of a member; nil when the key does not exist) takes part in.
func parseGeoQuery(name string, args [][]byte, resolve func(m []byte) (lon, lat float64, err error)) (geoQuery, error) {
	var q geoQuery
	search := strings.HasPrefix(name, "geosearch")
	storeCmd := name == "geosearchstore"
	noStore := strings.HasSuffix(name, "_ro")
	base := 0
	switch {
	case storeCmd:
		q.store, q.src, base = args[1], args[2], 3
	case search:
		q.src, base = args[1], 2
	case strings.HasPrefix(name, "georadiusbymember"):
		q.src, base = args[1], 5
		q.fromMember, q.haveMember = args[2], true
		if resolve != nil {
			lon, lat, err := resolve(args[2])
			if err != nil {
				return q, err
			}
			q.shape.lon, q.shape.lat, q.hasCenter = lon, lat, true
		}
	default: // georadius
		q.src, base = args[1], 6
		lon, lat, err := parseLonLat(args[2], args[3])
		if err != nil {
			return q, err
		}
		q.shape.lon, q.shape.lat, q.hasCenter = lon, lat, true
	}
	if !search {
		if err := parseRadius(&q.shape, args[base-2], args[base-1]); err != nil {
			return q, err
		}
		q.hasShape = true
	}
	fromLoc, byRadius, byBox := false, false, false
	rest := args[base:]
	for i := 0; i < len(rest); i++ {
		left := len(rest) - i - 1
		switch arg := strings.ToLower(string(rest[i])); {
		case arg == "withdist":
			q.withDist = true
		case arg == "withhash":
			q.withHash = true
		case arg == "withcoord":
			q.withCoord = true
		case arg == "any":
			q.any = true
		case arg == "asc":
			q.sort = 1
		case arg == "desc":
			q.sort = 2
		case arg == "count" && left >= 1:
			n, ok := crdt.ParseInt(rest[i+1])
			if !ok {
				return q, ErrNotInteger
			}
			if n <= 0 {
				return q, ErrGeoCount
			}
			q.count = n
			i++
		case (arg == "store" || arg == "storedist") && left >= 1 && !noStore && !search:
			q.store, q.storeDist = rest[i+1], arg == "storedist"
			i++
		case arg == "storedist" && storeCmd:
			q.storeDist = true
		case arg == "frommember" && left >= 1 && search && !fromLoc:
			q.fromMember, q.haveMember = rest[i+1], true
			if resolve != nil {
				lon, lat, err := resolve(rest[i+1])
				if err != nil {
					return q, err
				}
				q.shape.lon, q.shape.lat = lon, lat
			}
			i++
		case arg == "fromlonlat" && left >= 2 && search && q.fromMember == nil:
			lon, lat, err := parseLonLat(rest[i+1], rest[i+2])
			if err != nil {
				return q, err
			}
			q.shape.lon, q.shape.lat, fromLoc = lon, lat, true
			i += 2
		case arg == "byradius" && left >= 2 && search && !byBox:
			if err := parseRadius(&q.shape, rest[i+1], rest[i+2]); err != nil {
				return q, err
			}
			q.shape.box, byRadius = false, true
			i += 2
		case arg == "bybox" && left >= 3 && search && !byRadius:
			w, ok1 := parseScore(rest[i+1])
			if !ok1 {
				return q, errorf("ERR need numeric width")
			}
			h, ok2 := parseScore(rest[i+2])
			if !ok2 {
				return q, errorf("ERR need numeric height")
			}
			if h < 0 || w < 0 {
				return q, ErrGeoBox
			}
			conv, err := parseUnit(rest[i+3])
			if err != nil {
				return q, err
			}
			q.shape.box, q.shape.width, q.shape.height, q.shape.conversion = true, w, h, conv
			byBox = true
			i += 3
		default:
			return q, ErrSyntax
		}
	}
	if q.store != nil && (q.withDist || q.withHash || q.withCoord) {
		what := "STORE option in GEORADIUS"
		if storeCmd {
			what = "GEOSEARCHSTORE"
		}
		return q, errorf("ERR %s is not compatible with WITHDIST, WITHHASH and WITHCOORD options", what)
	}
	if search {
		if !q.haveMember && !fromLoc {
			return q, errorf("ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for %s", args[0])
		}
		if !byRadius && !byBox {
			return q, errorf("ERR exactly one of BYRADIUS and BYBOX can be specified for %s", args[0])
		}
		q.hasCenter = fromLoc
		q.hasShape = true
	}
	if q.any && q.count == 0 {
		return q, ErrGeoAnyCount
	}
	return q, nil
}

func parseRadius(s *geoShape, r, unit []byte) error {
	d, ok := parseScore(r)
	if !ok {
		return errorf("ERR need numeric radius")
	}
	if d < 0 {
		return ErrGeoRadius
	}
	conv, err := parseUnit(unit)
	if err != nil {
		return err
	}
	s.radius, s.conversion = d, conv
	return nil
}

// memberPos returns a resolver of member positions in geo set key.
func memberPos(v View, key []byte) func(m []byte) (float64, float64, error) {
	return func(m []byte) (float64, float64, error) {
		s, ok, err := zscore(v, key, m)
		if err != nil {
			return 0, 0, err
		}
		lon, lat, dok := decodeScore(s)
		if !ok || !dok {
			return 0, 0, ErrGeoMember
		}
		return lon, lat, nil
	}
}

// run searches, sorted as asked.
func (q *geoQuery) run(v View, exists bool) ([]geoPoint, error) {
	if !exists {
		return nil, nil
	}
	sortBy := q.sort
	if q.count != 0 && sortBy == 0 && !q.any {
		sortBy = 1
	}
	limit := 0
	if q.any {
		limit = int(q.count)
	}
	pts, err := geoSearch(v, q.src, &q.shape, limit)
	if err != nil {
		return nil, err
	}
	switch sortBy {
	case 1:
		sort.SliceStable(pts, func(i, j int) bool { return pts[i].dist < pts[j].dist })
	case 2:
		sort.SliceStable(pts, func(i, j int) bool { return pts[i].dist > pts[j].dist })
	}
	if q.count != 0 && int64(len(pts)) > q.count {
		pts = pts[:q.count]
	}
	for i := range pts {
		pts[i].dist /= q.shape.conversion
	}
	return pts, nil
}

// cmdGeoSearch is GEORADIUS, GEORADIUSBYMEMBER (and their _RO forms),
// GEOSEARCH and GEOSEARCHSTORE.
func cmdGeoSearch(cl *call) (Reply, error) {
	name := cl.cmd.name
	// The key is checked first, then the arguments in order (a member
	// center is looked up where it comes); a write needs its destination
	// known beforehand.
	parse := func(v View) (geoQuery, bool, error) {
		_, exists, err := collection(v, cl.args[1+boolInt(name == "geosearchstore")], crdt.TypeZSet)
		if err != nil {
			return geoQuery{}, false, err
		}
		var resolve func([]byte) (float64, float64, error)
		if exists {
			resolve = memberPos(v, cl.args[1+boolInt(name == "geosearchstore")])
		}
		q, err := parseGeoQuery(name, cl.args, resolve)
		return q, exists, err
	}
	var dst []byte
	if pre, err := parseGeoQuery(name, cl.args, nil); err == nil {
		dst = pre.store
	}
	if dst != nil {
		var n int64
		err := cl.update(dedupKeys([][]byte{dst, cl.args[1+boolInt(name == "geosearchstore")]}), func(tx Tx) error {
			q, exists, err := parse(tx)
			if err != nil {
				return err
			}
			pts, err := q.run(tx, exists)
			if err != nil {
				return err
			}
			if len(pts) > maxElemOps {
				return ErrTooManyElems
			}
			ms := make([][]byte, len(pts))
			ss := make([]float64, len(pts))
			for i, p := range pts {
				ms[i], ss[i] = p.member, p.score
				if q.storeDist {
					ss[i] = p.dist
				}
			}
			n = int64(len(pts))
			return storeMembers(tx, q.store, crdt.OpZAdd, ms, ss)
		})
		return integer(n), err
	}
	var out []Reply
	err := cl.view(func(v View) error {
		q, exists, err := parse(v)
		if err != nil {
			return err
		}
		pts, err := q.run(v, exists)
		if err != nil {
			return err
		}
		for _, p := range pts {
			if !q.withDist && !q.withHash && !q.withCoord {
				out = append(out, bulk(bytes.Clone(p.member)))
				continue
			}
			item := []Reply{bulk(bytes.Clone(p.member))}
			if q.withDist {
				item = append(item, bulkString(fmt.Sprintf("%.4f", p.dist)))
			}
			if q.withHash {
				item = append(item, integer(int64(p.score)))
			}
			if q.withCoord {
				item = append(item, array(bulk(humanDouble(p.lon)), bulk(humanDouble(p.lat))))
			}
			out = append(out, array(item...))
		}
		return nil
	})
	return array(out...), err
}
