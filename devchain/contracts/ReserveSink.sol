// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title ReserveSink
/// @notice Stands in for Venus' ProtocolShareReserve on the compound-v2 devchain: a VToken sends it
///         the protocol's share of seized collateral and of reduced reserves, then calls
///         `updateAssetsState`. It keeps what it receives and records each call. Written for this
///         project; only the interface is Venus'.
contract ReserveSink {
  event AssetsStateUpdated(address indexed comptroller, address indexed asset, uint8 incomeType);

  function updateAssetsState(address comptroller, address asset, uint8 incomeType) external {
    emit AssetsStateUpdated(comptroller, asset, incomeType);
  }
}
