// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Multicall3Like
/// @notice The read side of Multicall3's interface (`aggregate3`, block helpers), placed by the
///         mainnet twin at Multicall3's canonical address so that readers batching through it
///         work as on mainnet. Written for this project; only the interface is Multicall3's.
contract Multicall3Like {
  struct Call3 {
    address target;
    bool allowFailure;
    bytes callData;
  }

  struct Result {
    bool success;
    bytes returnData;
  }

  error CallFailed(uint256 index);

  /// @notice Calls each target in order; a failing call reverts the whole batch unless it
  ///         allows failure, in which case its result carries success = false.
  function aggregate3(Call3[] calldata calls) external payable returns (Result[] memory returnData) {
    returnData = new Result[](calls.length);
    for (uint256 i = 0; i < calls.length; i++) {
      (bool ok, bytes memory data) = calls[i].target.call(calls[i].callData);
      if (!ok && !calls[i].allowFailure) revert CallFailed(i);
      returnData[i] = Result(ok, data);
    }
  }

  function getBlockNumber() external view returns (uint256) {
    return block.number;
  }

  function getCurrentBlockTimestamp() external view returns (uint256) {
    return block.timestamp;
  }

  function getEthBalance(address account) external view returns (uint256) {
    return account.balance;
  }

  function getChainId() external view returns (uint256) {
    return block.chainid;
  }
}
