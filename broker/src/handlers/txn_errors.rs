//! Transaction coordinator errors as the transactional APIs answer them.

use sluice_log::Error;

use crate::handlers::codes::{
    INVALID_PRODUCER_EPOCH, INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED,
};

/// The code and message of a coordinator error for a request of `version`. A transactional id
/// the coordinator does not know is INVALID_PRODUCER_ID_MAPPING (as Kafka answers
/// AddPartitionsToTxn, AddOffsetsToTxn and EndTxn), and PRODUCER_FENCED becomes
/// INVALID_PRODUCER_EPOCH below `fenced_since`, the first version whose clients know it
/// (KIP-588).
pub(super) fn coordinator_error(e: &Error, version: i16, fenced_since: i16) -> (i16, String) {
    let message = sluice_log::report(e);
    let code = match e {
        Error::TransactionalIdNotFound(_) => INVALID_PRODUCER_ID_MAPPING,
        other => other.error_code(),
    };
    let code = if code == PRODUCER_FENCED && version < fenced_since {
        INVALID_PRODUCER_EPOCH
    } else {
        code
    };
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fencing_is_invalid_producer_epoch_for_old_versions() {
        let fenced = Error::ProducerFenced {
            transactional_id: "t".into(),
            current: 2,
            got: 1,
        };
        assert_eq!(coordinator_error(&fenced, 1, 2).0, INVALID_PRODUCER_EPOCH);
        assert_eq!(coordinator_error(&fenced, 2, 2).0, PRODUCER_FENCED);
        let unknown = Error::TransactionalIdNotFound("t".into());
        assert_eq!(
            coordinator_error(&unknown, 3, 2).0,
            INVALID_PRODUCER_ID_MAPPING
        );
    }
}
