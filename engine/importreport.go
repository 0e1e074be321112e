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
