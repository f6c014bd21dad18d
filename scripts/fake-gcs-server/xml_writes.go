// Writes through the GCS XML API, which object_store's GCS client uses and fake-gcs-server does not
// serve (fake-gcs-server issue 852): a plain PUT of an object, and multipart uploads
// (https://cloud.google.com/storage/docs/xml-api/multipart-uploads). Added to the fakestorage package
// by Ferry's scripts/test-servers.sh; parts are held in memory until the upload completes.

package fakestorage

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"

	"github.com/fsouza/fake-gcs-server/internal/backend"
	"github.com/gorilla/mux"
)

type xmlUpload struct {
	bucket string
	name   string
	parts  map[int][]byte
}

var (
	xmlUploadsMu sync.Mutex
	xmlUploads   = map[string]*xmlUpload{}
)

func (s *Server) registerXMLWrites(handler *mux.Router) {
	object := func() *mux.Route {
		return handler.MatcherFunc(s.publicHostMatcher).Path("/{bucketName}/{objectName:.+}")
	}
	object().Methods(http.MethodPost).Queries("uploads", "").HandlerFunc(s.xmlInitiateMultipart)
	object().Methods(http.MethodPut).Queries("partNumber", "{partNumber}", "uploadId", "{uploadId}").HandlerFunc(s.xmlPutPart)
	object().Methods(http.MethodPost).Queries("uploadId", "{uploadId}").HandlerFunc(s.xmlCompleteMultipart)
	object().Methods(http.MethodDelete).Queries("uploadId", "{uploadId}").HandlerFunc(s.xmlAbortMultipart)
	object().Methods(http.MethodPut).MatcherFunc(func(r *http.Request, _ *mux.RouteMatch) bool {
		q := r.URL.Query()
		return q.Get("uploadType") == "" && q.Get("X-Goog-Algorithm") == ""
	}).HandlerFunc(s.xmlPutObject)
}

func xmlError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<Error><Code>%d</Code><Message>%s</Message></Error>", status, message)
}

// xmlConditions reads GCS's `x-goog-if-generation-match` precondition (0: the object must not exist;
// N: its generation must be N), which object_store sends for create-only and conditional puts. The
// filesystem backend checks it and writes under one lock, so of racing conditional writes one wins.
func xmlConditions(r *http.Request) (backend.Conditions, bool) {
	value := r.Header.Get("x-goog-if-generation-match")
	if value == "" {
		return backend.NoConditions{}, true
	}
	generation, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return nil, false
	}
	return generationCondition{ifGenerationMatch: &generation}, true
}

// xmlStore creates the object and answers with its ETag and generation, as GCS does.
func (s *Server) xmlStore(w http.ResponseWriter, r *http.Request, bucket, name string, content io.ReadSeekCloser) (StreamingObject, bool) {
	conditions, ok := xmlConditions(r)
	if !ok {
		xmlError(w, http.StatusBadRequest, "InvalidArgument")
		return StreamingObject{}, false
	}
	obj, err := s.createObject(StreamingObject{
		ObjectAttrs: ObjectAttrs{BucketName: bucket, Name: name, ContentType: r.Header.Get("Content-Type")},
		Content:     content,
	}, conditions)
	if err == backend.PreConditionFailed {
		xmlError(w, http.StatusPreconditionFailed, "PreconditionFailed")
		return obj, false
	}
	if err != nil {
		xmlError(w, http.StatusInternalServerError, err.Error())
		return obj, false
	}
	obj.Close()
	w.Header().Set("ETag", strconv.Quote(obj.Etag))
	w.Header().Set("x-goog-generation", strconv.FormatInt(obj.Generation, 10))
	return obj, true
}

func (s *Server) xmlPutObject(w http.ResponseWriter, r *http.Request) {
	defer r.Body.Close()
	vars := unescapeMuxVars(mux.Vars(r))
	if _, err := s.backend.GetBucket(vars["bucketName"]); err != nil {
		xmlError(w, http.StatusNotFound, "NoSuchBucket")
		return
	}
	if _, ok := s.xmlStore(w, r, vars["bucketName"], vars["objectName"], notImplementedSeeker{r.Body}); ok {
		w.WriteHeader(http.StatusOK)
	}
}

func (s *Server) xmlInitiateMultipart(w http.ResponseWriter, r *http.Request) {
	vars := unescapeMuxVars(mux.Vars(r))
	if _, err := s.backend.GetBucket(vars["bucketName"]); err != nil {
		xmlError(w, http.StatusNotFound, "NoSuchBucket")
		return
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	xmlUploadsMu.Lock()
	xmlUploads[id] = &xmlUpload{bucket: vars["bucketName"], name: vars["objectName"], parts: map[int][]byte{}}
	xmlUploadsMu.Unlock()
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprintf(w, "<InitiateMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>",
		xmlText(vars["bucketName"]), xmlText(vars["objectName"]), id)
}

func (s *Server) xmlPutPart(w http.ResponseWriter, r *http.Request) {
	defer r.Body.Close()
	vars := mux.Vars(r)
	number, err := strconv.Atoi(vars["partNumber"])
	if err != nil || number < 1 {
		xmlError(w, http.StatusBadRequest, "InvalidArgument")
		return
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		xmlError(w, http.StatusBadRequest, err.Error())
		return
	}
	xmlUploadsMu.Lock()
	upload, ok := xmlUploads[vars["uploadId"]]
	if ok {
		upload.parts[number] = data
	}
	xmlUploadsMu.Unlock()
	if !ok {
		xmlError(w, http.StatusNotFound, "NoSuchUpload")
		return
	}
	w.Header().Set("ETag", strconv.Quote(fmt.Sprintf("part-%d-%d", number, len(data))))
	w.WriteHeader(http.StatusOK)
}

func (s *Server) xmlCompleteMultipart(w http.ResponseWriter, r *http.Request) {
	defer r.Body.Close()
	var request struct {
		Parts []struct {
			PartNumber int `xml:"PartNumber"`
		} `xml:"Part"`
	}
	if err := xml.NewDecoder(r.Body).Decode(&request); err != nil {
		xmlError(w, http.StatusBadRequest, "MalformedXML")
		return
	}
	id := mux.Vars(r)["uploadId"]
	xmlUploadsMu.Lock()
	upload, ok := xmlUploads[id]
	delete(xmlUploads, id)
	xmlUploadsMu.Unlock()
	if !ok {
		xmlError(w, http.StatusNotFound, "NoSuchUpload")
		return
	}
	numbers := make([]int, 0, len(request.Parts))
	for _, part := range request.Parts {
		if _, ok := upload.parts[part.PartNumber]; !ok {
			xmlError(w, http.StatusBadRequest, "InvalidPart")
			return
		}
		numbers = append(numbers, part.PartNumber)
	}
	sort.Ints(numbers)
	var content bytes.Buffer
	for _, number := range numbers {
		content.Write(upload.parts[number])
	}
	obj, ok := s.xmlStore(w, r, upload.bucket, upload.name, readSeekNopCloser{bytes.NewReader(content.Bytes())})
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	fmt.Fprintf(w, "<CompleteMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key><ETag>%s</ETag></CompleteMultipartUploadResult>",
		xmlText(upload.bucket), xmlText(upload.name), xmlText(strconv.Quote(obj.Etag)))
}

func (s *Server) xmlAbortMultipart(w http.ResponseWriter, r *http.Request) {
	xmlUploadsMu.Lock()
	delete(xmlUploads, mux.Vars(r)["uploadId"])
	xmlUploadsMu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func xmlText(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

type readSeekNopCloser struct{ *bytes.Reader }

func (readSeekNopCloser) Close() error { return nil }
