package engine

// Skipped is a row the store did not import.
type Skipped struct {
	Line     int    `json:"linea"`
	Telefono string `json:"telefono"`
	Reason   string `json:"motivo"` // duplicado | suprimido
}

// RejectedRow is a row the parser refused, with its line and why.
type RejectedRow struct {
	Line   int    `json:"linea"`
	Reason string `json:"motivo"`
}

// ImportReport says what an import did.
type ImportReport struct {
	Rows          int           `json:"filas"`
	Accepted      int           `json:"aceptados"`
	Duplicates    int           `json:"duplicados"`
	Suppressed    int           `json:"suprimidos"`
	RejectedCount int           `json:"rechazados"`
	Skipped       []Skipped     `json:"omitidos,omitempty"` // the first MaxReported
	Rejected      []RejectedRow `json:"rechazos,omitempty"` // the first MaxReported
	FirstSeq      uint64        `json:"desde,omitempty"`
	LastSeq       uint64        `json:"hasta,omitempty"`
}

// MaxReported bounds the rows listed in an ImportReport.
const MaxReported = 1000

// StoredReply is a reply as stored, with the envío it answers (if known).
type StoredReply struct {
	Reply
	Seq    uint64 `json:"seq"`
	Envio  string `json:"envio,omitempty"` // campaign/seq
	OptOut bool   `json:"baja,omitempty"`
}

// VerifyReport is the result of a journal verification. OK is false when
// the chain is broken or the replay disagrees with the stored data; BadSeq
// names the first journal record at fault (0 when the fault is in the
// stored data itself), Problem says what.
type VerifyReport struct {
	OK      bool   `json:"ok"`
	Records uint64 `json:"records"`
	Envios  uint64 `json:"envios"`
	BadSeq  uint64 `json:"bad_seq,omitempty"`
	Problem string `json:"problem,omitempty"`
}
